using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// Named leases in PostgreSQL. Taking one is a single upsert: two nodes asking at once are serialised on the row (the
/// second's conflict waits for the first to commit, then its condition is checked on the row the first wrote), so a
/// lease never has two owners.
/// </summary>
internal sealed class PostgresLeaseCatalog(PostgresDatabase database) : ILeaseCatalog
{
    public async Task<bool> TryAcquireAsync(string name, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            INSERT INTO leases (name, owner, lease_until) VALUES (@name, @owner, @until)
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
                WHERE leases.owner = excluded.owner OR leases.lease_until <= @now;
            """,
            p =>
            {
                p.AddText("@name", name);
                p.AddText("@owner", owner);
                p.AddInt64("@now", nowUnixMilliseconds);
                p.AddInt64("@until", untilUnixMilliseconds);
            },
            cancellationToken) > 0;

    public async Task<bool> RenewAsync(string name, string owner, long untilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            "UPDATE leases SET lease_until = @until WHERE name = @name AND owner = @owner;",
            p => { p.AddText("@name", name); p.AddText("@owner", owner); p.AddInt64("@until", untilUnixMilliseconds); },
            cancellationToken) > 0;

    public Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "DELETE FROM leases WHERE name = @name AND owner = @owner;",
            p => { p.AddText("@name", name); p.AddText("@owner", owner); },
            cancellationToken);
}
