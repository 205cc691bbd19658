using Starling.Server.Pipeline;

namespace Starling.Server.Tests.Pipeline;

/// <summary>Per-session typed slots: an index per key into a small array, allocated on first use.</summary>
public sealed class SessionSlotsTests
{
    private static readonly SessionKey<string> Name = new("test.name");
    private static readonly SessionKey<bool> Flag = new("test.flag");
    private static readonly SessionKey<HashSet<int>> Set = new("test.set");

    [Fact]
    public void An_unset_slot_reads_as_default_without_allocating_the_array()
    {
        object?[]? slots = null;
        Assert.Null(SessionSlots.Get(slots, Name));
        Assert.False(SessionSlots.Get(slots, Flag));
        Assert.Null(slots);
    }

    [Fact]
    public void Each_key_has_its_own_slot()
    {
        object?[]? slots = null;
        var set = new HashSet<int> { 1 };
        SessionSlots.Set(ref slots, Name, "alice");
        SessionSlots.Set(ref slots, Flag, true);
        SessionSlots.Set(ref slots, Set, set);

        Assert.Equal("alice", SessionSlots.Get(slots, Name));
        Assert.True(SessionSlots.Get(slots, Flag));
        Assert.Same(set, SessionSlots.Get(slots, Set));
        Assert.Equal(3, new HashSet<string>([Name.Name, Flag.Name, Set.Name]).Count);

        SessionSlots.Set(ref slots, Name, null);
        Assert.Null(SessionSlots.Get(slots, Name));
        Assert.True(SessionSlots.Get(slots, Flag));
    }

    [Fact]
    public void A_key_created_after_the_array_grows_it_and_keeps_the_other_slots()
    {
        object?[]? slots = null;
        SessionSlots.Set(ref slots, Name, "kept");
        var late = new SessionKey<string>("test.late");
        Assert.Null(SessionSlots.Get(slots, late));

        SessionSlots.Set(ref slots, late, "late");

        Assert.Equal("late", SessionSlots.Get(slots, late));
        Assert.Equal("kept", SessionSlots.Get(slots, Name));
    }
}
