using Starling.Server.Modules.Presence;
using Starling.Server.Storage;

namespace Starling.Server.Tests.Modules;

/// <summary>The state tables of RFC 6121 Appendix A, row by row, against <see cref="SubscriptionRules"/>.</summary>
public sealed class SubscriptionRulesTests
{
    private static readonly string[] States = ["None", "None+PO", "None+PI", "None+PO+PI", "To", "To+PI", "From", "From+PO", "Both"];

    private static ContactState State(string name) => name switch
    {
        "None" => new(true, false, false, false, false, false),
        "None+PO" => new(true, false, false, true, false, false),
        "None+PI" => new(true, false, false, false, true, false),
        "None+PO+PI" => new(true, false, false, true, true, false),
        "To" => new(true, true, false, false, false, false),
        "To+PI" => new(true, true, false, false, true, false),
        "From" => new(true, false, true, false, false, false),
        "From+PO" => new(true, false, true, true, false, false),
        "Both" => new(true, true, true, false, false, false),
        _ => throw new ArgumentOutOfRangeException(nameof(name)),
    };

    /// <summary>Each state of <see cref="States"/> in order, then the state the rule must lead to (pre-approval aside).</summary>
    public static TheoryData<string, string[]> Tables => new()
    {
        // Appendix A, outbound subscribe.
        { "OutboundSubscribe", ["None+PO", "None+PO", "None+PO+PI", "None+PO+PI", "To", "To+PI", "From+PO", "From+PO", "Both"] },
        // Appendix A, outbound unsubscribe.
        { "OutboundUnsubscribe", ["None", "None", "None+PI", "None+PI", "None", "None+PI", "From", "From", "From"] },
        // Appendix A, outbound subscribed (approval; without a request pending in it is a pre-approval, §3.4).
        { "OutboundSubscribed", ["None", "None+PO", "From", "From+PO", "To", "Both", "From", "From+PO", "Both"] },
        // Appendix A, outbound unsubscribed.
        { "OutboundUnsubscribed", ["None", "None+PO", "None", "None+PO", "To", "To", "None", "None+PO", "To"] },
        // Appendix A, inbound subscribe.
        { "InboundSubscribe", ["None+PI", "None+PO+PI", "None+PI", "None+PO+PI", "To+PI", "To+PI", "From", "From+PO", "Both"] },
        // Appendix A, inbound unsubscribe.
        { "InboundUnsubscribe", ["None", "None+PO", "None", "None+PO", "To", "To", "None", "None+PO", "To"] },
        // Appendix A, inbound subscribed: ignored without a request pending out.
        { "InboundSubscribed", ["None", "To", "None+PI", "To+PI", "To", "To+PI", "From", "Both", "Both"] },
        // Appendix A, inbound unsubscribed.
        { "InboundUnsubscribed", ["None", "None", "None+PI", "None+PI", "None", "None+PI", "From", "From", "From"] },
    };

    private static Func<ContactState, ContactState> Rule(string name) => name switch
    {
        "OutboundSubscribe" => SubscriptionRules.OutboundSubscribe,
        "OutboundUnsubscribe" => SubscriptionRules.OutboundUnsubscribe,
        "OutboundSubscribed" => SubscriptionRules.OutboundSubscribed,
        "OutboundUnsubscribed" => SubscriptionRules.OutboundUnsubscribed,
        "InboundSubscribe" => SubscriptionRules.InboundSubscribe,
        "InboundUnsubscribe" => SubscriptionRules.InboundUnsubscribe,
        "InboundSubscribed" => SubscriptionRules.InboundSubscribed,
        _ => SubscriptionRules.InboundUnsubscribed,
    };

    [Theory]
    [MemberData(nameof(Tables))]
    public void Every_state_moves_as_appendix_A_says(string rule, string[] expected)
    {
        var apply = Rule(rule);
        for (int i = 0; i < States.Length; i++)
        {
            var after = apply(State(States[i])) with { Approved = false };
            Assert.True(after == State(expected[i]), $"{rule} from {States[i]}: expected {expected[i]}, got {after}");
        }
    }

    [Theory]
    [InlineData("None")]
    [InlineData("None+PO")]
    [InlineData("To")]
    public void Subscribed_without_a_pending_request_is_a_pre_approval(string state)
    {
        var after = SubscriptionRules.OutboundSubscribed(State(state));
        Assert.True(after.Approved);
        Assert.False(after.From);
    }

    [Fact]
    public void Subscribed_to_a_contact_not_in_the_roster_creates_a_pre_approved_item()
    {
        var after = SubscriptionRules.OutboundSubscribed(ContactState.Absent);
        Assert.Equal(new ContactState(true, false, false, false, false, true), after);
    }

    [Fact]
    public void A_request_to_a_pre_approved_contact_is_approved_and_the_flag_cleared()
    {
        var preApproved = State("None+PO") with { Approved = true };
        Assert.Equal(State("From+PO"), SubscriptionRules.InboundSubscribe(preApproved));
    }

    [Fact]
    public void Unsubscribed_withdraws_a_pre_approval()
    {
        var preApproved = State("To") with { Approved = true };
        Assert.Equal(State("To"), SubscriptionRules.OutboundUnsubscribed(preApproved));
    }

    [Fact]
    public void A_request_from_a_contact_not_in_the_roster_is_pending_in_without_an_item()
    {
        var after = SubscriptionRules.InboundSubscribe(ContactState.Absent);
        Assert.False(after.InRoster);
        Assert.True(after.PendingIn);
        Assert.Equal("none", after.Subscription);
    }

    [Fact]
    public void Approving_a_request_from_a_contact_not_in_the_roster_adds_it_with_from()
    {
        var after = SubscriptionRules.OutboundSubscribed(ContactState.Absent with { PendingIn = true });
        Assert.Equal(State("From"), after);
    }

    [Fact]
    public void A_request_to_a_contact_not_in_the_roster_adds_it_asking()
    {
        Assert.Equal(State("None+PO"), SubscriptionRules.OutboundSubscribe(ContactState.Absent));
    }
}
