using Npgsql;
using Wharf.Core.Auth;
using Wharf.Core.Ports;

namespace Wharf.Storage.Postgres;

/// <summary>API keys in PostgreSQL; a key is found by its hash through a unique index, joined to its live workspace.</summary>
internal sealed class PostgresKeyCatalog(PostgresDatabase database) : IKeyCatalog
{
    private const string KeyColumns = "k.id, k.workspace_id, k.name, k.hash, k.prefix, k.created_at, k.scopes, k.expires_at, k.rate_limit_rpm, k.last_used_at";

    public Task<KeyLookup?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken) =>
        database.QueryFirstAsync(
            $"""
            SELECT {KeyColumns}, {PostgresWorkspaceCatalog.Columns}
            FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id
            WHERE k.hash = @hash AND w.deleted_at IS NULL;
            """,
            p => p.AddBytes("@hash", hash),
            r => new KeyLookup(ReadKey(r), PostgresWorkspaceCatalog.Read(r, 10)),
            cancellationToken);

    public async Task<bool> AnyKeyAsync(CancellationToken cancellationToken) =>
        (await database.QueryAsync("SELECT EXISTS (SELECT 1 FROM api_keys);", null, r => r.GetBoolean(0), cancellationToken))[0];

    public Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken) =>
        database.ExecuteAsync(
            """
            INSERT INTO api_keys (id, workspace_id, name, hash, prefix, created_at, scopes, expires_at, rate_limit_rpm)
            VALUES (@id, @ws, @name, @hash, @prefix, @created, @scopes, @expires, @rpm);
            """,
            p =>
            {
                p.AddText("@id", key.Id);
                p.AddText("@ws", key.WorkspaceId);
                p.AddText("@name", key.Name);
                p.AddBytes("@hash", key.Hash);
                p.AddText("@prefix", key.Prefix);
                p.AddInt64("@created", key.CreatedAt);
                p.AddText("@scopes", string.Join(' ', key.Scopes));
                p.AddInt64("@expires", key.ExpiresAt);
                p.AddInt64("@rpm", key.RateLimitRpm);
            },
            cancellationToken);

    public async Task<IReadOnlyList<ApiKeyRecord>> ListKeysAsync(string workspaceId, CancellationToken cancellationToken) =>
        await database.QueryAsync(
            $"SELECT {KeyColumns} FROM api_keys k WHERE k.workspace_id = @ws ORDER BY k.id;",
            p => p.AddText("@ws", workspaceId),
            ReadKey,
            cancellationToken);

    /// <summary>Removes the key and announces it (<see cref="PostgresKeyChanges"/>) in one transaction.</summary>
    public Task<bool> DeleteKeyAsync(string keyId, CancellationToken cancellationToken) =>
        database.InTransactionAsync(async (connection, transaction) =>
        {
            await using var command = new NpgsqlCommand("DELETE FROM api_keys WHERE id = @id;", connection, transaction);
            command.Parameters.AddText("@id", keyId);
            if (await command.ExecuteNonQueryAsync(cancellationToken) == 0)
            {
                return false;
            }
            await PostgresKeyChanges.AnnounceAsync(connection, transaction, cancellationToken);
            return true;
        }, cancellationToken);

    /// <summary>One statement for every key: the pairs travel as two arrays.</summary>
    public Task TouchKeysAsync(IReadOnlyCollection<KeyValuePair<string, long>> lastUsed, CancellationToken cancellationToken) =>
        lastUsed.Count == 0
            ? Task.CompletedTask
            : database.ExecuteAsync(
                """
                UPDATE api_keys k SET last_used_at = greatest(coalesce(k.last_used_at, 0), t.at)
                FROM unnest(@ids, @ats) AS t(id, at) WHERE k.id = t.id;
                """,
                p =>
                {
                    p.AddTextArray("@ids", lastUsed.Select(pair => pair.Key));
                    p.Add(new NpgsqlParameter("@ats", NpgsqlTypes.NpgsqlDbType.Array | NpgsqlTypes.NpgsqlDbType.Bigint)
                    {
                        Value = lastUsed.Select(pair => pair.Value).ToArray(),
                    });
                },
                cancellationToken);

    private static ApiKeyRecord ReadKey(NpgsqlDataReader row) => new()
    {
        Id = row.GetString(0),
        WorkspaceId = row.GetString(1),
        Name = row.GetString(2),
        Hash = row.GetFieldValue<byte[]>(3),
        Prefix = row.GetString(4),
        CreatedAt = row.GetInt64(5),
        Scopes = row.GetString(6).Split(' ', StringSplitOptions.RemoveEmptyEntries),
        ExpiresAt = row.NullableInt64(7),
        RateLimitRpm = checked((int?)row.NullableInt64(8)),
        LastUsedAt = row.NullableInt64(9),
    };
}
