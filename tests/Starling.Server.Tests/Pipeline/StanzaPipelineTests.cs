using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Starling.Server.Pipeline;
using Starling.Xml;
using Starling.Xmpp;

namespace Starling.Server.Tests.Pipeline;

/// <summary>The stanza pipeline's chains: order, stopping, containment; event names.</summary>
public sealed class StanzaPipelineTests
{
    private static readonly Jid Alice = Jid.Parse("alice@localhost/a");
    private static readonly Jid Bob = Jid.Parse("bob@localhost");

    private static StanzaContext Message() => new(new XmlElement("message", Namespaces.Client), Alice, Bob);

    private static StanzaHandler Record(List<string> log, string name, bool handled = false) => _ =>
    {
        log.Add(name);
        return new ValueTask<bool>(handled);
    };

    private static StanzaPipeline Build(StanzaPipelineBuilder builder, List<(StanzaErrorCondition, string?)>? bounces = null) =>
        builder.Build(NullLogger.Instance, (_, condition, text) => bounces?.Add((condition, text)));

    [Fact]
    public async Task Handlers_run_highest_priority_first()
    {
        var log = new List<string>();
        var builder = new StanzaPipelineBuilder();
        builder.Hook(StanzaEvent.MessageBare, Record(log, "zero"), 0);
        builder.Hook(StanzaEvent.MessageBare, Record(log, "ten"), 10);
        builder.Hook(StanzaEvent.MessageBare, Record(log, "minus"), -5);
        builder.Hook(StanzaEvent.MessageBare, Record(log, "five"), 5);

        bool handled = await Build(builder).FireAsync(StanzaEvent.MessageBare, Message());

        Assert.False(handled);
        Assert.Equal(["ten", "five", "zero", "minus"], log);
    }

    [Fact]
    public async Task Equal_priorities_run_in_registration_order()
    {
        var log = new List<string>();
        var builder = new StanzaPipelineBuilder();
        for (int i = 0; i < 6; i++) builder.Hook(StanzaEvent.PreMessageBare, Record(log, "h" + i), i % 2);

        await Build(builder).FireAsync(StanzaEvent.PreMessageBare, Message());

        Assert.Equal(["h1", "h3", "h5", "h0", "h2", "h4"], log);
    }

    [Fact]
    public async Task A_handler_that_handles_the_stanza_stops_the_chain()
    {
        var log = new List<string>();
        var builder = new StanzaPipelineBuilder();
        builder.Hook(StanzaEvent.MessageOffline, Record(log, "first"), 10);
        builder.Hook(StanzaEvent.MessageOffline, Record(log, "store", handled: true), 0);
        builder.Hook(StanzaEvent.MessageOffline, Record(log, "bounce", handled: true), int.MinValue);

        bool handled = await Build(builder).FireAsync(StanzaEvent.MessageOffline, Message());

        Assert.True(handled);
        Assert.Equal(["first", "store"], log);
    }

    [Fact]
    public async Task Each_event_has_its_own_chain()
    {
        var log = new List<string>();
        var builder = new StanzaPipelineBuilder();
        builder.Hook(StanzaEvent.MessageFull, Record(log, "full", handled: true));
        var pipeline = Build(builder);

        Assert.False(await pipeline.FireAsync(StanzaEvent.MessageBare, Message()));
        Assert.False(await pipeline.FireAsync(StanzaEvent.PreMessageFull, Message()));
        Assert.Empty(log);
        Assert.True(await pipeline.FireAsync(StanzaEvent.MessageFull, Message()));
        Assert.Equal(0, pipeline.HandlerCount(StanzaEvent.MessageBare));
        Assert.Equal(1, pipeline.HandlerCount(StanzaEvent.MessageFull));
    }

    [Fact]
    public async Task A_handler_completing_later_is_awaited_before_the_next_runs()
    {
        var log = new List<string>();
        var gate = new TaskCompletionSource();
        var builder = new StanzaPipelineBuilder();
        builder.Hook(StanzaEvent.PresenceBare, async _ =>
        {
            await gate.Task;
            log.Add("slow");
            return false;
        }, 1);
        builder.Hook(StanzaEvent.PresenceBare, Record(log, "next"), 0);

        var fired = Build(builder).FireAsync(StanzaEvent.PresenceBare, Message()).AsTask();
        Assert.Empty(log);
        gate.SetResult();
        await fired;

        Assert.Equal(["slow", "next"], log);
    }

    [Fact]
    public async Task A_throwing_handler_is_contained_and_the_sender_gets_internal_server_error()
    {
        var log = new List<string>();
        var bounces = new List<(StanzaErrorCondition, string?)>();
        var builder = new StanzaPipelineBuilder();
        builder.Hook(StanzaEvent.PreMessageBare, _ => throw new InvalidOperationException("bug"), 1);
        builder.Hook(StanzaEvent.PreMessageBare, Record(log, "after"), 0);

        bool handled = await Build(builder, bounces).FireAsync(StanzaEvent.PreMessageBare, Message());

        Assert.True(handled);
        Assert.Empty(log);
        var (condition, text) = Assert.Single(bounces);
        Assert.Equal(StanzaErrorCondition.InternalServerError, condition);
        Assert.Null(text);
    }

    [Fact]
    public async Task A_busy_database_in_a_handler_gets_resource_constraint()
    {
        var bounces = new List<(StanzaErrorCondition, string?)>();
        var builder = new StanzaPipelineBuilder();
        builder.Hook(StanzaEvent.MessageOffline, async _ =>
        {
            await Task.Yield();
            throw new SqliteException("database is locked", 5);
        });

        bool handled = await Build(builder, bounces).FireAsync(StanzaEvent.MessageOffline, Message());

        Assert.True(handled);
        var (condition, text) = Assert.Single(bounces);
        Assert.Equal(StanzaErrorCondition.ResourceConstraint, condition);
        Assert.Contains("busy", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(StanzaStage.Pre, StanzaKind.Message, StanzaAddressing.Bare, "pre-message/bare")]
    [InlineData(StanzaStage.Pre, StanzaKind.Presence, StanzaAddressing.Host, "pre-presence/host")]
    [InlineData(StanzaStage.Pre, StanzaKind.Iq, StanzaAddressing.Full, "pre-iq/full")]
    [InlineData(StanzaStage.Deliver, StanzaKind.Message, StanzaAddressing.Offline, "message/offline")]
    [InlineData(StanzaStage.Deliver, StanzaKind.Presence, StanzaAddressing.Full, "presence/full")]
    [InlineData(StanzaStage.Deliver, StanzaKind.Iq, StanzaAddressing.Bare, "iq/bare")]
    public void Events_are_named_as_prosody_names_its_hooks(StanzaStage stage, StanzaKind kind, StanzaAddressing addressing, string name)
    {
        var e = StanzaEvent.Of(stage, kind, addressing);
        Assert.Equal(name, e.Name);
        Assert.Equal((stage, kind, addressing), (e.Stage, e.Kind, e.Addressing));
    }

    [Fact]
    public void Every_event_has_a_distinct_name_and_only_messages_have_an_offline_event()
    {
        var names = new HashSet<string>();
        foreach (StanzaStage stage in Enum.GetValues<StanzaStage>())
        {
            foreach (StanzaKind kind in Enum.GetValues<StanzaKind>())
            {
                foreach (StanzaAddressing addressing in Enum.GetValues<StanzaAddressing>())
                {
                    if (addressing == StanzaAddressing.Offline && (stage, kind) != (StanzaStage.Deliver, StanzaKind.Message))
                    {
                        Assert.Throws<ArgumentException>(() => StanzaEvent.Of(stage, kind, addressing));
                        continue;
                    }
                    Assert.True(names.Add(StanzaEvent.Of(stage, kind, addressing).Name));
                }
            }
        }
        Assert.Equal(19, names.Count);
    }

    [Theory]
    [InlineData("localhost", StanzaAddressing.Host)]
    [InlineData("bob@localhost", StanzaAddressing.Bare)]
    [InlineData("bob@localhost/phone", StanzaAddressing.Full)]
    public void Addressing_follows_the_jid(string jid, StanzaAddressing addressing) =>
        Assert.Equal(addressing, StanzaEvent.AddressingOf(Jid.Parse(jid)));
}
