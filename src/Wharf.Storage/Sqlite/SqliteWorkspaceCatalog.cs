using Microsoft.Data.Sqlite;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>
/// Workspaces in SQLite. Deletion marks the row and drops the keys; once its files are gone the row is marked purged
/// and kept, so an upload that was already under way when the workspace was deleted can never add a file to it.
/// </summary>
internal sealed class SqliteWorkspaceCatalog(SqliteDatabase database) : IWorkspaceCatalog, IWorkspaceUsageReader
{
    internal const string Columns = "w.id, w.name, w.created_at, w.storage_quota_bytes, w.rate_limit_rpm, w.usage_bytes, w.allowed_providers, w.webhook_url";

    public Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? webhookSecret = null) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO workspaces (id, name, created_at, storage_quota_bytes, rate_limit_rpm, allowed_providers, webhook_url, webhook_secret)
                VALUES ($id, $name, $created, $quota, $rpm, $allowed, $webhook, CASE WHEN $webhook IS NULL THEN NULL ELSE $secret END);
                """;
            command.Parameters.AddWithValue("$id", workspace.Id);
            command.Parameters.AddWithValue("$name", workspace.Name);
            command.Parameters.AddWithValue("$created", workspace.CreatedAt);
            command.Parameters.AddWithValue("$quota", (object?)workspace.StorageQuotaBytes ?? DBNull.Value);
            command.Parameters.AddWithValue("$rpm", (object?)workspace.RateLimitRpm ?? DBNull.Value);
            command.Parameters.AddWithValue("$allowed", AllowedProvidersValue(workspace));
            command.Parameters.AddWithValue("$webhook", (object?)workspace.WebhookUrl ?? DBNull.Value);
            command.Parameters.AddWithValue("$secret", (object?)webhookSecret ?? DBNull.Value);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public Task<Workspace?> GetWorkspaceAsync(string workspaceId, CancellationToken cancellationToken) =>
        QuerySingleAsync($"SELECT {Columns} FROM workspaces w WHERE w.id = $p AND w.deleted_at IS NULL;", workspaceId, cancellationToken);

    public Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken) =>
        QuerySingleAsync($"SELECT {Columns} FROM workspaces w WHERE w.name = $p AND w.deleted_at IS NULL ORDER BY w.id LIMIT 1;", name, cancellationToken);

    public Task<Page<Workspace>> ListWorkspacesAsync(int limit, string? after, CancellationToken cancellationToken)
    {
        var items = database.Query(
            $"SELECT {Columns} FROM workspaces w WHERE w.deleted_at IS NULL AND w.id > $after ORDER BY w.id {SqliteDatabase.Limit(limit + 1)};",
            [new("$after", after ?? "")],
            r => Read(r, 0),
            cancellationToken);
        bool hasMore = items.Count > limit;
        if (hasMore)
        {
            items.RemoveAt(items.Count - 1);
        }
        return Task.FromResult(new Page<Workspace>(items, hasMore));
    }

    public Task<IReadOnlyList<WorkspaceStorage>> ListLargestAsync(int max, CancellationToken cancellationToken) =>
        Task.FromResult<IReadOnlyList<WorkspaceStorage>>(database.Query(
            $"""
            SELECT w.id, w.usage_bytes, (SELECT count(*) FROM files f WHERE f.workspace_id = w.id)
            FROM workspaces w WHERE w.deleted_at IS NULL ORDER BY w.usage_bytes DESC, w.id {SqliteDatabase.Limit(max)};
            """,
            [],
            r => new WorkspaceStorage(r.String(0), r.Int64(1), r.Int64(2)),
            cancellationToken));

    public async Task<bool> UpdateWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? newWebhookSecret = null) =>
        await database.ExecuteAsync(
            """
            UPDATE workspaces SET name = $name, storage_quota_bytes = $quota, rate_limit_rpm = $rpm, allowed_providers = $allowed,
                webhook_url = $webhook,
                webhook_secret = CASE WHEN $webhook IS NULL THEN NULL ELSE coalesce($secret, webhook_secret) END
            WHERE id = $id AND deleted_at IS NULL;
            """,
            p =>
            {
                p.AddWithValue("$id", workspace.Id);
                p.AddWithValue("$name", workspace.Name);
                p.AddWithValue("$quota", (object?)workspace.StorageQuotaBytes ?? DBNull.Value);
                p.AddWithValue("$rpm", (object?)workspace.RateLimitRpm ?? DBNull.Value);
                p.AddWithValue("$allowed", AllowedProvidersValue(workspace));
                p.AddWithValue("$webhook", (object?)workspace.WebhookUrl ?? DBNull.Value);
                p.AddWithValue("$secret", (object?)newWebhookSecret ?? DBNull.Value);
            },
            cancellationToken) > 0;

    public Task<bool> DeleteWorkspaceAsync(string workspaceId, long deletedAt, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "UPDATE workspaces SET deleted_at = $at WHERE id = $id AND deleted_at IS NULL;";
            command.Parameters.AddWithValue("$id", workspaceId);
            command.Parameters.AddWithValue("$at", deletedAt);
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            command.CommandText = "DELETE FROM api_keys WHERE workspace_id = $id;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            return true;
        }, cancellationToken);

    public Task<IReadOnlyList<string>> ListDeletedWorkspacesAsync(int max, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT id FROM workspaces WHERE deleted_at IS NOT NULL AND purged = 0 ORDER BY deleted_at {SqliteDatabase.Limit(max)};",
            [],
            r => r.String(0),
            cancellationToken);

    public async Task<bool> PurgeWorkspaceAsync(string workspaceId, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            UPDATE workspaces SET purged = 1 WHERE id = $id AND deleted_at IS NOT NULL AND purged = 0
                AND NOT EXISTS (SELECT 1 FROM files WHERE workspace_id = $id);
            """,
            p => p.AddWithValue("$id", workspaceId),
            cancellationToken) > 0;

    internal static Workspace Read(SqliteRow row, int first) => new()
    {
        Id = row.String(first),
        Name = row.String(first + 1),
        CreatedAt = row.Int64(first + 2),
        StorageQuotaBytes = row.NullableInt64(first + 3),
        RateLimitRpm = checked((int?)row.NullableInt64(first + 4)),
        UsageBytes = row.Int64(first + 5),
        AllowedProviders = row.NullableString(first + 6)?.Split(' ', StringSplitOptions.RemoveEmptyEntries),
        WebhookUrl = row.NullableString(first + 7),
    };

    /// <summary>Provider ids (which hold no space) joined by spaces; NULL for every provider, '' for none.</summary>
    private static object AllowedProvidersValue(Workspace workspace) =>
        workspace.AllowedProviders is { } ids ? string.Join(' ', ids) : DBNull.Value;

    private Task<Workspace?> QuerySingleAsync(string sql, string parameter, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(sql, [new("$p", parameter)], r => Read(r, 0), cancellationToken);
}
