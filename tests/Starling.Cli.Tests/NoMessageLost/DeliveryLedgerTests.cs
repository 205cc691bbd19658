namespace Starling.Cli.Tests.NoMessageLost;

/// <summary>The proof's bookkeeping on its own: what counts as missing, what as a duplicate, what is allowed.</summary>
public sealed class DeliveryLedgerTests
{
    private static DeliveryLedger SentAndAcknowledged(int count, int acknowledged)
    {
        var ledger = new DeliveryLedger(count);
        for (int n = 1; n <= count; n++) ledger.Sent(n);
        for (int n = 1; n <= acknowledged; n++) ledger.Acknowledged(n);
        return ledger;
    }

    [Fact]
    public void Every_acknowledged_number_received_once_by_any_path_holds()
    {
        var ledger = SentAndAcknowledged(4, 4);
        ledger.Received("1", DeliveryPath.Live);
        ledger.Received("2", DeliveryPath.Resumed);
        ledger.Received("3", DeliveryPath.Offline);
        ledger.Received("4", DeliveryPath.Live);

        var verdict = ledger.Verdict();
        Assert.True(verdict.Holds, verdict.ToString());
        Assert.True(ledger.AllAcknowledgedReceived());
        Assert.Equal((2, 1, 1), (verdict.Live, verdict.Resumed, verdict.Offline));
    }

    [Fact]
    public void An_acknowledged_number_never_received_is_missing()
    {
        var ledger = SentAndAcknowledged(5, 5);
        foreach (var n in (string[])["1", "5"]) ledger.Received(n, DeliveryPath.Live);

        var verdict = ledger.Verdict();
        Assert.False(verdict.Holds);
        Assert.False(ledger.AllAcknowledgedReceived());
        Assert.Equal([2, 3, 4], verdict.Missing);
        Assert.Contains("missing (acknowledged, never received) 3 [2-4]", verdict.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unacknowledged_number_may_be_lost_but_not_received_twice()
    {
        var ledger = SentAndAcknowledged(3, 1);
        ledger.Received("1", DeliveryPath.Live);
        ledger.Received("2", DeliveryPath.Live);
        Assert.True(ledger.Verdict().Holds, "a lost unacknowledged message (3) breaks no promise");

        ledger.Received("2", DeliveryPath.Offline);
        var verdict = ledger.Verdict();
        Assert.False(verdict.Holds);
        Assert.Equal(["2 (copy 2, Offline)"], verdict.Duplicates);
    }

    [Fact]
    public void A_bounced_message_or_a_body_that_is_not_one_of_ours_breaks_the_promise()
    {
        var bounced = SentAndAcknowledged(1, 1);
        bounced.Received("1", DeliveryPath.Live);
        bounced.Bounced(1, "<message type='error'/>");
        Assert.False(bounced.Verdict().Holds);

        var foreign = SentAndAcknowledged(1, 1);
        foreign.Received("1", DeliveryPath.Live);
        foreign.Received("7", DeliveryPath.Live);
        Assert.False(foreign.Verdict().Holds);
        Assert.Equal(["7"], foreign.Verdict().Foreign);
    }
}
