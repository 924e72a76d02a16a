namespace Wharf.Core.Ports;

/// <summary>
/// Named leases: which node does a piece of background work that must run on one node at a time (a sweep's rounds).
/// A lease has one owner until its deadline; the owner extends it while it works and gives it up when it stops; a
/// lease whose owner died runs out, and the next node to ask takes it. Times are unix milliseconds of the callers'
/// clocks, which must agree to well within a lease's length (NTP). A lease only decides who works: the work itself
/// must stay correct when two nodes overlap (a paused owner may wake up after its lease passed to another).
/// </summary>
public interface ILeaseCatalog
{
    /// <summary>
    /// Takes lease <paramref name="name"/> for <paramref name="owner"/> until <paramref name="untilUnixMilliseconds"/>
    /// when no one holds it, when it ran out (its deadline at or before <paramref name="nowUnixMilliseconds"/>), or
    /// when <paramref name="owner"/> holds it already (its deadline is then moved). False, and nothing changed, when
    /// another owner holds it.
    /// </summary>
    Task<bool> TryAcquireAsync(string name, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken);

    /// <summary>Moves the deadline of a lease <paramref name="owner"/> holds; false when another owner has it (or no one).</summary>
    Task<bool> RenewAsync(string name, string owner, long untilUnixMilliseconds, CancellationToken cancellationToken);

    /// <summary>Gives the lease up when <paramref name="owner"/> holds it, so another node may take it at once.</summary>
    Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken);
}
