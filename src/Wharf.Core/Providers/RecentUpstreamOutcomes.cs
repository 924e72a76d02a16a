using System.Collections.Concurrent;

namespace Wharf.Core.Providers;

/// <summary>
/// One upstream call as the telemetry decorator saw it: when it ended, what it was and how it went. A value, stored
/// in place in a provider's ring: recording a call allocates nothing.
/// </summary>
/// <param name="At">When the call ended, in Unix seconds.</param>
/// <param name="Operation">The call, e.g. <c>chat.completions</c> or <c>files.upload</c>.</param>
/// <param name="Outcome"><c>ok</c>, a failure category's wire name, <c>cancelled</c> or <c>exception</c>.</param>
/// <param name="Status">The upstream's HTTP status, when it answered.</param>
/// <param name="DurationMs">From sending the call to its outcome (a streamed answer: to its headers).</param>
public readonly record struct RecentUpstreamOutcome(long At, string Operation, string Outcome, int? Status, long DurationMs);

/// <summary>
/// The last <see cref="PerProvider"/> upstream outcomes of each provider on this node, newest first: what the
/// console's providers page shows an operator ("is this provider failing right now, and how?"). Bounded in memory
/// whatever the traffic; the metrics (<c>wharf.provider.calls</c>) hold the totals. Nothing from a request or an
/// answer is kept: an operation name, an outcome, a status and a duration.
/// </summary>
/// <remarks>
/// Per node, like the metrics: another node behind the same load balancer keeps its own. A provider's ring mixes the
/// calls of every workspace that uses it, so it is served to the operator alone (the admin API), never to a workspace key.
/// </remarks>
public sealed class RecentUpstreamOutcomes
{
    public const int PerProvider = 50;

    private readonly ConcurrentDictionary<string, Ring> _byProvider = new(StringComparer.Ordinal);

    public void Add(string providerId, RecentUpstreamOutcome outcome) =>
        _byProvider.GetOrAdd(providerId, static _ => new Ring()).Add(outcome);

    /// <summary>The provider's recent outcomes, newest first; empty for a provider not called since the start.</summary>
    public IReadOnlyList<RecentUpstreamOutcome> Of(string providerId) =>
        _byProvider.TryGetValue(providerId, out var ring) ? ring.NewestFirst() : [];

    private sealed class Ring
    {
        private readonly RecentUpstreamOutcome[] _items = new RecentUpstreamOutcome[PerProvider];
        private readonly Lock _lock = new();
        private int _next;
        private int _count;

        public void Add(RecentUpstreamOutcome outcome)
        {
            lock (_lock)
            {
                _items[_next] = outcome;
                _next = (_next + 1) % _items.Length;
                _count = Math.Min(_count + 1, _items.Length);
            }
        }

        public RecentUpstreamOutcome[] NewestFirst()
        {
            lock (_lock)
            {
                var copy = new RecentUpstreamOutcome[_count];
                for (int i = 0; i < _count; i++)
                {
                    copy[i] = _items[(_next - 1 - i + _items.Length) % _items.Length];
                }
                return copy;
            }
        }
    }
}
