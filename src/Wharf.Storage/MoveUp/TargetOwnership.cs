using Microsoft.Data.Sqlite;
using Npgsql;

namespace Wharf.Storage.MoveUp;

/// <summary>
/// Whether the PostgreSQL catalog may receive this embedded store: it must be empty, or hold what an earlier run of
/// this store left (a run that was cut). Workspaces are the root of everything a catalog holds and their ids are
/// random, so a target whose every workspace is one of the source's (same id, same creation time) and whose every
/// table holds no more rows than the source's is taken for an earlier run; anything else is another deployment's
/// catalog (or one a node has written to), which move-up must not mix with this one.
/// </summary>
internal static class TargetOwnership
{
    /// <summary>Null when the run may go on, else why not.</summary>
    public static async Task<string?> CheckAsync(
        IReadOnlyList<CatalogTable> tables, IReadOnlyDictionary<string, long> sourceCounts,
        SqliteConnection source, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        const string Refusal = "The PostgreSQL database already holds a catalog that is not an earlier, unfinished move-up of this embedded store";
        bool empty = true;
        foreach (var table in tables)
        {
            long rows = await CatalogRows.CountTargetAsync(table, target, cancellationToken);
            empty &= rows == 0;
            if (rows > sourceCounts[table.Name])
            {
                return $"{Refusal}: its table {table.Name} holds {rows} rows, the embedded store's {sourceCounts[table.Name]}. Move up into an empty database.";
            }
        }
        if (empty)
        {
            return null;
        }
        await using var command = target.CreateCommand("SELECT id, created_at FROM workspaces ORDER BY id;");
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            string id = reader.GetString(0);
            long createdAt = reader.GetInt64(1);
            if (await SourceWorkspaceCreatedAtAsync(source, id, cancellationToken) != createdAt)
            {
                return $"{Refusal}: its workspace {id} is not one of the embedded store's. Move up into an empty database.";
            }
        }
        return null;
    }

    private static async Task<long?> SourceWorkspaceCreatedAtAsync(SqliteConnection source, string id, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "SELECT created_at FROM workspaces WHERE id = $id;";
        command.Parameters.AddWithValue("$id", id);
        return await command.ExecuteScalarAsync(cancellationToken) is long createdAt ? createdAt : null;
    }
}
