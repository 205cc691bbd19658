using System.IO.Pipelines;

namespace Starling.Server.Transport;

/// <summary>
/// A <see cref="Stream"/> over a connection's pipes, so <see cref="System.Net.Security.SslStream"/> can sit on top of
/// a Kestrel connection when STARTTLS swaps the plaintext pipe for an encrypted one (RFC 6120 §5.4.3.3).
/// </summary>
internal sealed class DuplexPipeStream : Stream
{
    private readonly Stream _read;
    private readonly Stream _write;

    public DuplexPipeStream(IDuplexPipe pipe)
    {
        _read = pipe.Input.AsStream(leaveOpen: true);
        _write = pipe.Output.AsStream(leaveOpen: true);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => _read.Read(buffer, offset, count);
    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _read.ReadAsync(buffer, cancellationToken);
    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _read.ReadAsync(buffer, offset, count, cancellationToken);
    public override void Write(byte[] buffer, int offset, int count) => _write.Write(buffer, offset, count);
    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _write.WriteAsync(buffer, cancellationToken);
    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _write.WriteAsync(buffer, offset, count, cancellationToken);
    public override void Flush() => _write.Flush();
    public override Task FlushAsync(CancellationToken cancellationToken) => _write.FlushAsync(cancellationToken);
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            _read.Dispose();
            _write.Dispose();
        }
        base.Dispose(disposing);
    }
}
