using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>Named leases in SQLite: each call one statement of the single writer, so a check and its write are one step.</summary>
internal sealed class SqliteLeaseCatalog(SqliteDatabase database) : ILeaseCatalog
{
    public async Task<bool> TryAcquireAsync(string name, string owner, long nowUnixMilliseconds, long untilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            INSERT INTO leases (name, owner, lease_until) VALUES ($name, $owner, $until)
            ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
                WHERE leases.owner = excluded.owner OR leases.lease_until <= $now;
            """,
            p =>
            {
                p.AddWithValue("$name", name);
                p.AddWithValue("$owner", owner);
                p.AddWithValue("$now", nowUnixMilliseconds);
                p.AddWithValue("$until", untilUnixMilliseconds);
            },
            cancellationToken) > 0;

    public async Task<bool> RenewAsync(string name, string owner, long untilUnixMilliseconds, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            "UPDATE leases SET lease_until = $until WHERE name = $name AND owner = $owner;",
            p =>
            {
                p.AddWithValue("$name", name);
                p.AddWithValue("$owner", owner);
                p.AddWithValue("$until", untilUnixMilliseconds);
            },
            cancellationToken) > 0;

    public Task ReleaseAsync(string name, string owner, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            "DELETE FROM leases WHERE name = $name AND owner = $owner;",
            p =>
            {
                p.AddWithValue("$name", name);
                p.AddWithValue("$owner", owner);
            },
            cancellationToken);
}
