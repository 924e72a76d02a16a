using Microsoft.Data.Sqlite;
using Npgsql;

namespace Wharf.Storage.MoveUp;

/// <summary>
/// Whether the PostgreSQL catalog may receive this embedded store: it must be empty, or hold what an earlier run of
/// this store left (a run that was cut). Workspaces are the root of everything a catalog holds and their ids are
/// random, so a target whose every workspace is one of the source's (same id, same creation time) and whose every
/// table holds no more rows than the source's is taken for an earlier run; anything else is another deployment's
/// catalog (or one a node has written to), which move-up must not mix with this one. A node started on the moved
/// catalog need not add a workspace or a row (revoking a key or deleting a file removes or changes rows), but it takes
/// the sweeps' leases in the catalog at its first round: a lease whose owner is not the one the store holds for that
/// name tells a catalog that a node has used, which a run again would roll back (a revoked key or a deleted file put
/// back), so it is refused too.
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
        await using (var leases = target.CreateCommand("SELECT name, owner FROM leases ORDER BY name;"))
        await using (var leaseRows = await leases.ExecuteReaderAsync(cancellationToken))
        {
            while (await leaseRows.ReadAsync(cancellationToken))
            {
                string name = leaseRows.GetString(0);
                if (await SourceLeaseOwnerAsync(source, name, cancellationToken) != leaseRows.GetString(1))
                {
                    return $"{Refusal}: a Wharf node has used it (its lease '{name}' is held by another node). Running move-up again would undo what the nodes did since; move up into an empty database.";
                }
            }
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

    private static async Task<string?> SourceLeaseOwnerAsync(SqliteConnection source, string name, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "SELECT owner FROM leases WHERE name = $name;";
        command.Parameters.AddWithValue("$name", name);
        return await command.ExecuteScalarAsync(cancellationToken) as string;
    }

    private static async Task<long?> SourceWorkspaceCreatedAtAsync(SqliteConnection source, string id, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "SELECT created_at FROM workspaces WHERE id = $id;";
        command.Parameters.AddWithValue("$id", id);
        return await command.ExecuteScalarAsync(cancellationToken) is long createdAt ? createdAt : null;
    }
}
