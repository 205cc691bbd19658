using Starling.Load;

namespace Starling.Load.Tests;

public class RingPairingTests
{
    public static TheoryData<int, int> Sizes => new()
    {
        { 2, 1 }, { 3, 2 }, { 5, 4 }, { 10, 3 }, { 10, 9 }, { 21, 20 }, { 100, 20 }, { 2000, 20 }, { 2000, 21 },
    };

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Every_user_gets_exactly_contacts_distinct_partners_and_the_relation_is_symmetric(int users, int contacts)
    {
        Assert.Null(RingPairing.Validate(users, contacts));
        for (int i = 0; i < users; i++)
        {
            var partners = new HashSet<int>();
            for (int s = 0; s < contacts; s++)
            {
                int p = RingPairing.Partner(i, s, users, contacts);
                Assert.InRange(p, 0, users - 1);
                Assert.NotEqual(i, p);
                Assert.True(partners.Add(p), $"user {i}: partner {p} twice");
                // Symmetric: i is one of p's partners, and SlotOf finds both directions.
                Assert.Equal(s, RingPairing.SlotOf(i, p, users, contacts));
                int back = RingPairing.SlotOf(p, i, users, contacts);
                Assert.True(back >= 0, $"user {p} does not have {i} as a partner");
                Assert.Equal(i, RingPairing.Partner(p, back, users, contacts));
            }
            Assert.Equal(contacts, partners.Count);
        }
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Exactly_one_side_of_each_pair_sends_the_first_request(int users, int contacts)
    {
        long initiators = 0;
        for (int i = 0; i < users; i++)
        {
            for (int s = 0; s < contacts; s++)
            {
                int p = RingPairing.Partner(i, s, users, contacts);
                bool mine = RingPairing.Initiates(i, s, users, contacts);
                bool theirs = RingPairing.Initiates(p, RingPairing.SlotOf(p, i, users, contacts), users, contacts);
                Assert.NotEqual(mine, theirs);
                if (mine) initiators++;
            }
        }
        Assert.Equal((long)users * contacts / 2, initiators);
    }

    [Fact]
    public void The_ring_pairs_neighbours_and_an_odd_count_adds_the_user_opposite()
    {
        int[] Partners(int i, int users, int contacts)
        {
            var list = new List<int>();
            for (int s = 0; s < contacts; s++) list.Add(RingPairing.Partner(i, s, users, contacts));
            list.Sort();
            return [.. list];
        }

        Assert.Equal([1, 2, 8, 9], Partners(0, 10, 4));
        Assert.Equal([1, 2, 5, 8, 9], Partners(0, 10, 5));
        Assert.Equal(-1, RingPairing.SlotOf(0, 3, 10, 4));
        Assert.Equal(-1, RingPairing.SlotOf(0, 0, 10, 4));
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(10, 0)]
    [InlineData(10, 10)]
    [InlineData(11, 3)]
    public void Impossible_ring_sizes_are_refused(int users, int contacts) => Assert.NotNull(RingPairing.Validate(users, contacts));
}

public class FanoutOptionsTests
{
    [Fact]
    public void Subscribe_and_provision_only_are_parsed()
    {
        var o = LoadOptions.Parse(["--users", "2000", "--contacts=20", "--subscribe", "--provision-only"]);
        Assert.True(o.Subscribe);
        Assert.True(o.ProvisionOnly);
        Assert.False(o.ProvisionRosters);
        Assert.Equal(20, o.Contacts);

        var plain = LoadOptions.Parse(["--users", "2000"]);
        Assert.False(plain.Subscribe);
        Assert.False(plain.ProvisionOnly);
    }

    [Fact]
    public void Subscribe_with_an_impossible_ring_is_a_usage_error()
    {
        // 11 users cannot each have 3 partners (an odd count needs the user opposite, so an even user count).
        var ex = Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--users", "11", "--contacts", "3", "--subscribe"]));
        Assert.Contains("--subscribe", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--users", "1", "--subscribe"]));
        // Without --subscribe the same sizes are still accepted (the roster-set provisioning clamps, as before).
        Assert.False(LoadOptions.Parse(["--users", "11", "--contacts", "3"]).Subscribe);
    }

    [Fact]
    public void Contacts_above_the_user_count_are_clamped_as_for_the_roster_provisioning()
    {
        // --contacts 100 with 100 users: 99 partners each (odd, so the user opposite; 100 is even).
        Assert.True(LoadOptions.Parse(["--users", "100", "--subscribe"]).Subscribe);
    }

    [Fact]
    public void Provision_only_without_a_provisioning_phase_is_a_usage_error() =>
        Assert.Throws<ArgumentException>(() => LoadOptions.Parse(["--provision-only"]));
}
