using Microsoft.Data.Sqlite;
using Wharf.Core.Auth;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>API keys in SQLite; a key is found by its hash through a unique index, joined to its live workspace.</summary>
internal sealed class SqliteKeyCatalog(SqliteDatabase database) : IKeyCatalog
{
    private const string KeyColumns = "k.id, k.workspace_id, k.name, k.hash, k.prefix, k.created_at, k.scopes, k.expires_at, k.rate_limit_rpm, k.last_used_at";

    public Task<KeyLookup?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"""
            SELECT {KeyColumns}, {SqliteWorkspaceCatalog.Columns}
            FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
            WHERE k.hash = $hash AND w.deleted_at IS NULL;
            """,
            [new("$hash", hash)],
            r => new KeyLookup(ReadKey(r), SqliteWorkspaceCatalog.Read(r, 10)),
            cancellationToken);

    public Task<bool> AnyKeyAsync(CancellationToken cancellationToken) =>
        Task.FromResult(database.Query("SELECT EXISTS (SELECT 1 FROM api_keys);", [], r => r.Int64(0) == 1, cancellationToken)[0]);

    public Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO api_keys (id, workspace_id, name, hash, prefix, created_at, scopes, expires_at, rate_limit_rpm)
                VALUES ($id, $ws, $name, $hash, $prefix, $created, $scopes, $expires, $rpm);
                """;
            command.Parameters.AddWithValue("$id", key.Id);
            command.Parameters.AddWithValue("$ws", key.WorkspaceId);
            command.Parameters.AddWithValue("$name", key.Name);
            command.Parameters.AddWithValue("$hash", key.Hash);
            command.Parameters.AddWithValue("$prefix", key.Prefix);
            command.Parameters.AddWithValue("$created", key.CreatedAt);
            command.Parameters.AddWithValue("$scopes", string.Join(' ', key.Scopes));
            command.Parameters.AddWithValue("$expires", (object?)key.ExpiresAt ?? DBNull.Value);
            command.Parameters.AddWithValue("$rpm", (object?)key.RateLimitRpm ?? DBNull.Value);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public Task<IReadOnlyList<ApiKeyRecord>> ListKeysAsync(string workspaceId, CancellationToken cancellationToken) =>
        database.QueryListAsync(
            $"SELECT {KeyColumns} FROM api_keys k WHERE k.workspace_id = $ws ORDER BY k.id;",
            [new("$ws", workspaceId)],
            ReadKey,
            cancellationToken);

    public async Task<bool> DeleteKeyAsync(string keyId, CancellationToken cancellationToken) =>
        await database.ExecuteAsync("DELETE FROM api_keys WHERE id = $id;", p => p.AddWithValue("$id", keyId), cancellationToken) > 0;

    public Task TouchKeysAsync(IReadOnlyCollection<KeyValuePair<string, long>> lastUsed, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "UPDATE api_keys SET last_used_at = max(coalesce(last_used_at, 0), $at) WHERE id = $id;";
            var id = command.Parameters.Add("$id", SqliteType.Text);
            var at = command.Parameters.Add("$at", SqliteType.Integer);
            foreach (var (keyId, when) in lastUsed)
            {
                id.Value = keyId;
                at.Value = when;
                await command.ExecuteNonQueryAsync(cancellationToken);
            }
            return lastUsed.Count;
        }, cancellationToken);

    private static ApiKeyRecord ReadKey(SqliteRow row) => new()
    {
        Id = row.String(0),
        WorkspaceId = row.String(1),
        Name = row.String(2),
        Hash = row.Blob(3),
        Prefix = row.String(4),
        CreatedAt = row.Int64(5),
        Scopes = row.String(6).Split(' ', StringSplitOptions.RemoveEmptyEntries),
        ExpiresAt = row.NullableInt64(7),
        RateLimitRpm = checked((int?)row.NullableInt64(8)),
        LastUsedAt = row.NullableInt64(9),
    };
}
