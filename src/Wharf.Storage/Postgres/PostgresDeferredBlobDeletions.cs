using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>Blobs of deleted files waiting for their removal, in PostgreSQL (<c>blob_deletions</c>).</summary>
internal sealed class PostgresDeferredBlobDeletions(PostgresDatabase database) : IDeferredBlobDeletions
{
    public Task DeferAsync(IReadOnlyCollection<string> blobIds, long removeAtUnixSeconds, CancellationToken cancellationToken) =>
        blobIds.Count == 0
            ? Task.CompletedTask
            : database.ExecuteAsync(
                """
                INSERT INTO blob_deletions (id, remove_at) SELECT id, @at FROM unnest(@ids) AS d(id)
                ON CONFLICT (id) DO UPDATE SET remove_at = greatest(blob_deletions.remove_at, excluded.remove_at);
                """,
                p => { p.AddTextArray("@ids", blobIds.Distinct(StringComparer.Ordinal)); p.AddInt64("@at", removeAtUnixSeconds); },
                cancellationToken);

    public async Task<IReadOnlyList<string>> ListDueAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            "SELECT id FROM blob_deletions WHERE remove_at <= @now ORDER BY remove_at LIMIT @max;",
            p => { p.AddInt64("@now", nowUnixSeconds); p.AddInt32("@max", max); },
            r => r.GetString(0),
            cancellationToken);

    public Task ForgetAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken) =>
        blobIds.Count == 0
            ? Task.CompletedTask
            : database.ExecuteAsync("DELETE FROM blob_deletions WHERE id = ANY(@ids);", p => p.AddTextArray("@ids", blobIds), cancellationToken);

    public Task<IReadOnlySet<string>> FindDeferredAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken) =>
        database.FindExistingIdsAsync("blob_deletions", blobIds, cancellationToken);
}
