using Npgsql;
using Wharf.Core.Auth;
using Wharf.Core.Files;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>
/// Workspaces in PostgreSQL. A change or a deletion is announced to every node's key cache by its transaction
/// (<see cref="PostgresKeyChanges"/>). Deletion marks the row and drops the keys in one transaction; its <c>UPDATE</c> waits for
/// any upload that holds the row's lock (adding usage to it) to commit, and an upload after it finds the row deleted,
/// so no file joins a deleted workspace. Once its files are gone the row is marked purged and kept.
/// </summary>
internal sealed class PostgresWorkspaceCatalog(PostgresDatabase database) : IWorkspaceCatalog, IWorkspaceUsageReader
{
    internal const string Columns = "w.id, w.name, w.created_at, w.storage_quota_bytes, w.rate_limit_rpm, w.usage_bytes, w.allowed_providers, w.webhook_url";

    public Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? webhookSecret = null) =>
        database.ExecuteAsync(
            """
            INSERT INTO workspaces (id, name, created_at, storage_quota_bytes, rate_limit_rpm, allowed_providers, webhook_url, webhook_secret)
            VALUES (@id, @name, @created, @quota, @rpm, @allowed, @webhook, CASE WHEN @webhook IS NULL THEN NULL ELSE @secret END);
            """,
            p =>
            {
                p.AddText("@id", workspace.Id);
                p.AddText("@name", workspace.Name);
                p.AddInt64("@created", workspace.CreatedAt);
                p.AddInt64("@quota", workspace.StorageQuotaBytes);
                p.AddInt64("@rpm", workspace.RateLimitRpm);
                p.AddText("@allowed", AllowedProvidersValue(workspace));
                p.AddText("@webhook", workspace.WebhookUrl);
                p.AddText("@secret", webhookSecret);
            },
            cancellationToken);

    public Task<Workspace?> GetWorkspaceAsync(string workspaceId, CancellationToken cancellationToken) =>
        QuerySingleAsync($"SELECT {Columns} FROM workspaces w WHERE w.id = @p AND w.deleted_at IS NULL;", workspaceId, cancellationToken);

    public Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken) =>
        QuerySingleAsync($"SELECT {Columns} FROM workspaces w WHERE w.name = @p AND w.deleted_at IS NULL ORDER BY w.id LIMIT 1;", name, cancellationToken);

    public async Task<Page<Workspace>> ListWorkspacesAsync(int limit, string? after, CancellationToken cancellationToken)
    {
        var items = await database.QueryAsync(
            $"SELECT {Columns} FROM workspaces w WHERE w.deleted_at IS NULL AND w.id > @after ORDER BY w.id LIMIT @limit;",
            p => { p.AddText("@after", after ?? ""); p.AddInt32("@limit", limit + 1); },
            r => Read(r, 0),
            cancellationToken);
        bool hasMore = items.Count > limit;
        if (hasMore)
        {
            items.RemoveAt(items.Count - 1);
        }
        return new Page<Workspace>(items, hasMore);
    }

    public async Task<IReadOnlyList<WorkspaceStorage>> ListLargestAsync(int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            """
            SELECT w.id, w.usage_bytes, (SELECT count(*) FROM files f WHERE f.workspace_id = w.id)
            FROM workspaces w WHERE w.deleted_at IS NULL ORDER BY w.usage_bytes DESC, w.id COLLATE "C" LIMIT @max;
            """,
            p => p.AddInt32("@max", max),
            r => new WorkspaceStorage(r.GetString(0), r.GetInt64(1), r.GetInt64(2)),
            cancellationToken);

    /// <summary>Writes the workspace and announces the change (<see cref="PostgresKeyChanges"/>) in one transaction.</summary>
    public Task<bool> UpdateWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken, string? newWebhookSecret = null) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand(
                """
                UPDATE workspaces SET name = @name, storage_quota_bytes = @quota, rate_limit_rpm = @rpm, allowed_providers = @allowed,
                    webhook_url = @webhook,
                    webhook_secret = CASE WHEN @webhook IS NULL THEN NULL ELSE coalesce(@secret, webhook_secret) END
                WHERE id = @id AND deleted_at IS NULL;
                """,
                connection,
                transaction);
            command.Parameters.AddText("@id", workspace.Id);
            command.Parameters.AddText("@name", workspace.Name);
            command.Parameters.AddInt64("@quota", workspace.StorageQuotaBytes);
            command.Parameters.AddInt64("@rpm", workspace.RateLimitRpm);
            command.Parameters.AddText("@allowed", AllowedProvidersValue(workspace));
            command.Parameters.AddText("@webhook", workspace.WebhookUrl);
            command.Parameters.AddText("@secret", newWebhookSecret);
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            await PostgresKeyChanges.AnnounceAsync(connection, transaction, cancellationToken);
            return true;
        }, cancellationToken);

    /// <summary>Marks it deleted, drops its keys and announces it (<see cref="PostgresKeyChanges"/>), in one transaction.</summary>
    public Task<bool> DeleteWorkspaceAsync(string workspaceId, long deletedAt, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand("UPDATE workspaces SET deleted_at = @at WHERE id = @id AND deleted_at IS NULL;", connection, transaction);
            command.Parameters.AddText("@id", workspaceId);
            command.Parameters.AddInt64("@at", deletedAt);
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            command.CommandText = "DELETE FROM api_keys WHERE workspace_id = @id;";
            await command.ExecuteNonQueryAsync(cancellationToken);
            await PostgresKeyChanges.AnnounceAsync(connection, transaction, cancellationToken);
            return true;
        }, cancellationToken);

    public async Task<IReadOnlyList<string>> ListDeletedWorkspacesAsync(int max, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            "SELECT id FROM workspaces WHERE deleted_at IS NOT NULL AND NOT purged ORDER BY deleted_at LIMIT @max;",
            p => p.AddInt32("@max", max),
            r => r.GetString(0),
            cancellationToken);

    public async Task<bool> PurgeWorkspaceAsync(string workspaceId, CancellationToken cancellationToken) =>
        await database.ExecuteAsync(
            """
            UPDATE workspaces SET purged = true WHERE id = @id AND deleted_at IS NOT NULL AND NOT purged
                AND NOT EXISTS (SELECT 1 FROM files WHERE workspace_id = @id);
            """,
            p => p.AddText("@id", workspaceId),
            cancellationToken) > 0;

    internal static Workspace Read(NpgsqlDataReader row, int first) => new()
    {
        Id = row.GetString(first),
        Name = row.GetString(first + 1),
        CreatedAt = row.GetInt64(first + 2),
        StorageQuotaBytes = row.NullableInt64(first + 3),
        RateLimitRpm = checked((int?)row.NullableInt64(first + 4)),
        UsageBytes = row.GetInt64(first + 5),
        AllowedProviders = row.NullableString(first + 6)?.Split(' ', StringSplitOptions.RemoveEmptyEntries),
        WebhookUrl = row.NullableString(first + 7),
    };

    /// <summary>Provider ids joined by spaces; NULL for every provider, '' for none.</summary>
    private static string? AllowedProvidersValue(Workspace workspace) =>
        workspace.AllowedProviders is { } ids ? string.Join(' ', ids) : null;

    private Task<Workspace?> QuerySingleAsync(string sql, string parameter, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(sql, p => p.AddText("@p", parameter), r => Read(r, 0), cancellationToken);
}
