using System.Text.Json;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>Blobs of deleted files waiting for their removal, in SQLite (<c>blob_deletions</c>).</summary>
internal sealed class SqliteDeferredBlobDeletions(SqliteDatabase database) : IDeferredBlobDeletions
{
    public Task DeferAsync(IReadOnlyCollection<string> blobIds, long removeAtUnixSeconds, CancellationToken cancellationToken) =>
        blobIds.Count == 0
            ? Task.CompletedTask
            : database.ExecuteAsync(
                """
                INSERT INTO blob_deletions (id, remove_at) SELECT value, $at FROM json_each($ids) WHERE true
                ON CONFLICT (id) DO UPDATE SET remove_at = max(remove_at, excluded.remove_at);
                """,
                p =>
                {
                    p.AddWithValue("$ids", JsonSerializer.Serialize(blobIds, StorageJsonContext.Default.IReadOnlyCollectionString));
                    p.AddWithValue("$at", removeAtUnixSeconds);
                },
                cancellationToken);

    public Task<IReadOnlyList<string>> ListDueAsync(long nowUnixSeconds, int max, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT id FROM blob_deletions WHERE remove_at <= $now ORDER BY remove_at {SqliteDatabase.Limit(max)};",
            [new("$now", nowUnixSeconds)],
            r => r.String(0),
            cancellationToken);

    /// <summary>A delete: on a full disk too (<see cref="SqliteDatabase.WriteFreeingSpaceAsync{T}"/>).</summary>
    public Task ForgetAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken) =>
        blobIds.Count == 0
            ? Task.CompletedTask
            : database.WriteFreeingSpaceAsync(async (connection, transaction) =>
            {
                await using var command = connection.CreateCommand();
                command.Transaction = transaction;
                command.CommandText = "DELETE FROM blob_deletions WHERE id IN (SELECT value FROM json_each($ids));";
                command.Parameters.AddWithValue("$ids", JsonSerializer.Serialize(blobIds, StorageJsonContext.Default.IReadOnlyCollectionString));
                return await command.ExecuteNonQueryAsync(cancellationToken);
            }, cancellationToken);

    public Task<IReadOnlySet<string>> FindDeferredAsync(IReadOnlyCollection<string> blobIds, CancellationToken cancellationToken) =>
        database.FindExistingIdsAsync("blob_deletions", blobIds, cancellationToken);
}
