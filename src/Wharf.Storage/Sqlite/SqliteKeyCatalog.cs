using Wharf.Core.Auth;
using Wharf.Core.Ports;

namespace Wharf.Storage.Sqlite;

/// <summary>Workspaces and API keys in SQLite; a key is found by its hash through a unique index.</summary>
internal sealed class SqliteKeyCatalog(SqliteDatabase database) : IKeyCatalog
{
    public async Task<ApiKeyRecord?> FindKeyByHashAsync(byte[] hash, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, workspace_id, name, hash, prefix, created_at FROM api_keys WHERE hash = $hash;";
        command.Parameters.AddWithValue("$hash", hash);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        if (!await reader.ReadAsync(cancellationToken))
        {
            return null;
        }
        return new ApiKeyRecord
        {
            Id = reader.GetString(0),
            WorkspaceId = reader.GetString(1),
            Name = reader.GetString(2),
            Hash = (byte[])reader.GetValue(3),
            Prefix = reader.GetString(4),
            CreatedAt = reader.GetInt64(5),
        };
    }

    public async Task<bool> AnyKeyAsync(CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT EXISTS (SELECT 1 FROM api_keys);";
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture) == 1;
    }

    public async Task<Workspace?> FindWorkspaceByNameAsync(string name, CancellationToken cancellationToken)
    {
        await using var connection = await database.OpenAsync(cancellationToken);
        await using var command = connection.CreateCommand();
        command.CommandText = "SELECT id, name, created_at FROM workspaces WHERE name = $name ORDER BY id LIMIT 1;";
        command.Parameters.AddWithValue("$name", name);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        return await reader.ReadAsync(cancellationToken)
            ? new Workspace(reader.GetString(0), reader.GetString(1), reader.GetInt64(2))
            : null;
    }

    public Task InsertWorkspaceAsync(Workspace workspace, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = "INSERT INTO workspaces (id, name, created_at) VALUES ($id, $name, $created);";
            command.Parameters.AddWithValue("$id", workspace.Id);
            command.Parameters.AddWithValue("$name", workspace.Name);
            command.Parameters.AddWithValue("$created", workspace.CreatedAt);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public Task InsertKeyAsync(ApiKeyRecord key, CancellationToken cancellationToken) =>
        database.WriteAsync(async (connection, transaction) =>
        {
            await using var command = connection.CreateCommand();
            command.Transaction = transaction;
            command.CommandText = """
                INSERT INTO api_keys (id, workspace_id, name, hash, prefix, created_at)
                VALUES ($id, $ws, $name, $hash, $prefix, $created);
                """;
            command.Parameters.AddWithValue("$id", key.Id);
            command.Parameters.AddWithValue("$ws", key.WorkspaceId);
            command.Parameters.AddWithValue("$name", key.Name);
            command.Parameters.AddWithValue("$hash", key.Hash);
            command.Parameters.AddWithValue("$prefix", key.Prefix);
            command.Parameters.AddWithValue("$created", key.CreatedAt);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);
}
