using System.Text;

namespace Starling.Xml.Tests;

/// <summary>
/// Hostile input: random mutations of a real session (bit flips, deleted/duplicated/inserted bytes, truncation) and
/// random garbage. Whatever arrives, Read never throws — it reports events or one Error with a condition — and
/// never runs away with memory past the limits.
/// </summary>
public sealed class ParserHostileInputTests
{
    private static readonly byte[] Session = Encoding.UTF8.GetBytes(
        "<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='localhost' version='1.0' xml:lang='en'>" +
        "<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='SCRAM-SHA-1'>biwsbj1zZXJnaW8scj0yOElFQUFBQUFBQWJsU1ZhQUFBQUFBPT0=</auth>" +
        "<iq type='set' id='_xmpp_bind1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>profanity</resource></bind></iq>" +
        "<presence id='prof_presence_1'><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' node='http://www.profanity.im' ver='jra5S1tICxzuMGVnu86Tv5flMBU='/></presence>" +
        "<message id='prof_msg_6' to='sergio@localhost/profanity' type='chat'><body>bien y tú? &amp; &#x1F600; &lt;3</body><request xmlns='urn:xmpp:receipts'/></message>" +
        "</stream:stream>");

    [Fact]
    public void Mutated_sessions_never_throw()
    {
        var random = new Random(6120);
        var limits = new XmlLimits { MaxStanzaBytes = 10_000, MaxDepth = 8, MaxAttributes = 8 };
        for (int round = 0; round < 20_000; round++)
        {
            var bytes = Mutate(Session, random);
            Feed(bytes, random, limits, $"round {round}: {Convert.ToBase64String(bytes)}");
        }
    }

    [Fact]
    public void Random_garbage_never_throws()
    {
        var random = new Random(7622);
        for (int round = 0; round < 5_000; round++)
        {
            var bytes = new byte[random.Next(1, 400)];
            random.NextBytes(bytes);
            // Half the time, behind a valid header, so the garbage reaches the stanza level.
            if (round % 2 == 0) bytes = [.. Session.AsSpan(0, 150), .. bytes];
            Feed(bytes, random, XmlLimits.Default, $"round {round}: {Convert.ToBase64String(bytes)}");
        }
    }

    private static void Feed(byte[] bytes, Random random, XmlLimits limits, string what)
    {
        var parser = new XmlStreamParser(limits);
        int offset = 0;
        bool opened = false;
        while (offset < bytes.Length)
        {
            int chunk = Math.Min(bytes.Length - offset, random.Next(1, 64));
            var span = bytes.AsSpan(offset, chunk);
            XmlStreamEvent ev;
            int consumed;
            try
            {
                ev = parser.Read(span, out consumed);
            }
            catch (Exception ex)
            {
                Assert.Fail($"Read threw {ex.GetType().Name}: {ex.Message} ({what})");
                return;
            }
            Assert.InRange(consumed, 0, chunk);
            offset += consumed;
            switch (ev)
            {
                case XmlStreamEvent.Error:
                    Assert.NotEqual(XmlStreamErrorCondition.None, parser.Error);
                    return;
                case XmlStreamEvent.StreamOpen:
                    Assert.False(opened, what);
                    opened = true;
                    break;
                case XmlStreamEvent.Element:
                    Assert.True(opened, what);
                    Assert.NotNull(parser.TakeElement());
                    break;
                case XmlStreamEvent.StreamClose:
                    return;
                case XmlStreamEvent.NeedMoreData:
                    Assert.Equal(chunk, consumed);
                    break;
            }
        }
    }

    private static byte[] Mutate(byte[] source, Random random)
    {
        var list = new List<byte>(source);
        int mutations = random.Next(1, 4);
        for (int m = 0; m < mutations && list.Count > 0; m++)
        {
            int at = random.Next(list.Count);
            switch (random.Next(5))
            {
                case 0: list[at] ^= (byte)(1 << random.Next(8)); break;
                case 1: list.RemoveAt(at); break;
                case 2: list.Insert(at, (byte)random.Next(256)); break;
                case 3: list.Insert(at, (byte)"<>&;'\"/=:!?-[]"[random.Next(14)]); break;
                default: list.RemoveRange(at, list.Count - at); break;
            }
        }
        return [.. list];
    }
}
