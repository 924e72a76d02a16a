using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using Wharf.Core.Leases;
using Wharf.Core.Ports;
using Wharf.Server.Hosting;

namespace Wharf.Server.Tests.Hosting;

/// <summary>Which node runs a sweep's round, on one lease table that two nodes share.</summary>
public sealed class SweepLeasesTests
{
    private const string Sweep = "storage-sweep";
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(60);
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly OneTableOfLeases _table = new();

    private SweepLeases Node() => new(_table, new NodeIdentity(), Options.Create(new WharfOptions()), _time, NullLogger<SweepLeases>.Instance);

    [Fact]
    public async Task The_holder_keeps_the_sweep_from_round_to_round_and_the_other_node_skips()
    {
        SweepLeases a = Node(), b = Node();
        int roundsA = 0, roundsB = 0;

        Assert.True(await a.RunAsync(Sweep, Interval, _ => { roundsA++; return Task.CompletedTask; }, CancellationToken.None));
        Assert.False(await b.RunAsync(Sweep, Interval, _ => { roundsB++; return Task.CompletedTask; }, CancellationToken.None));
        _time.Advance(Interval);
        Assert.True(await a.RunAsync(Sweep, Interval, _ => { roundsA++; return Task.CompletedTask; }, CancellationToken.None));
        Assert.False(await b.RunAsync(Sweep, Interval, _ => { roundsB++; return Task.CompletedTask; }, CancellationToken.None));

        Assert.Equal((2, 0), (roundsA, roundsB));
    }

    [Fact]
    public async Task A_node_whose_round_failed_gives_the_sweep_up_and_sits_the_next_round_out()
    {
        SweepLeases a = Node(), b = Node();
        int roundsB = 0;

        await Assert.ThrowsAsync<IOException>(() => a.RunAsync(Sweep, Interval, _ => throw new IOException("the bucket refused the credentials"), CancellationToken.None));
        _time.Advance(Interval);
        // The failing node asks first, yet the round is the other node's.
        Assert.False(await a.RunAsync(Sweep, Interval, _ => Task.CompletedTask, CancellationToken.None));
        Assert.True(await b.RunAsync(Sweep, Interval, _ => { roundsB++; return Task.CompletedTask; }, CancellationToken.None));
        Assert.Equal(1, roundsB);
        // Alone, it would sweep again from the round after.
        _time.Advance(Interval * 3);
        Assert.True(await a.RunAsync(Sweep, Interval, _ => Task.CompletedTask, CancellationToken.None));
    }

    /// <summary>The lease table of a catalog, in memory: one owner per name until its time runs out.</summary>
    private sealed class OneTableOfLeases : ILeaseCatalog
    {
        private readonly Dictionary<string, (string Owner, long Until)> _leases = [];

        public Task<bool> TryAcquireAsync(string name, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken)
        {
            lock (_leases)
            {
                if (_leases.TryGetValue(name, out var held) && held.Owner != owner && held.Until > nowUnixMilliseconds)
                {
                    return Task.FromResult(false);
                }
                _leases[name] = (owner, untilUnixMilliseconds);
                return Task.FromResult(true);
            }
        }

        public Task<bool> RenewAsync(string name, string owner, long untilUnixMilliseconds, CancellationToken cancellationToken)
        {
            lock (_leases)
            {
                bool mine = _leases.TryGetValue(name, out var held) && held.Owner == owner;
                if (mine)
                {
                    _leases[name] = (owner, untilUnixMilliseconds);
                }
                return Task.FromResult(mine);
            }
        }

        public Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken)
        {
            lock (_leases)
            {
                if (_leases.TryGetValue(name, out var held) && held.Owner == owner)
                {
                    _leases.Remove(name);
                }
            }
            return Task.CompletedTask;
        }
    }
}
