using System.Text.RegularExpressions;
using Microsoft.Data.Sqlite;
using Npgsql;

namespace Wharf.Storage.MoveUp;

/// <summary>How a column's values are written to PostgreSQL (its type there) and read from SQLite.</summary>
internal enum ColumnKind
{
    Text,
    Int64,
    Int32,
    Boolean,
    Bytes,
}

internal sealed record CatalogColumn(string Name, ColumnKind Kind);

/// <summary>
/// A table of the embedded catalog and its place in the PostgreSQL catalog: its columns, the primary key's first
/// (<see cref="KeyCount"/> of them, in key order), then the others.
/// </summary>
internal sealed record CatalogTable(string Name, IReadOnlyList<CatalogColumn> Columns, int KeyCount)
{
    public IEnumerable<CatalogColumn> Key => Columns.Take(KeyCount);

    public string ColumnList => string.Join(", ", Columns.Select(c => Quote(c.Name)));

    public string QuotedName => Quote(Name);

    /// <summary>The primary key's order, bytewise for text (as both catalogs compare ids), the same in both databases.</summary>
    public string KeyOrder(string textCollation) =>
        string.Join(", ", Key.Select(c => c.Kind == ColumnKind.Text ? $"{Quote(c.Name)} COLLATE {textCollation}" : Quote(c.Name)));

    /// <summary>A row's key as it can be shown (ids, numbers: never a secret, which no key column holds).</summary>
    public string DescribeKey(object?[] row) =>
        "(" + string.Join(", ", Key.Select((c, i) => $"{c.Name}={row[i] switch { null => "null", byte[] => "<bytes>", var v => Convert.ToString(v, System.Globalization.CultureInfo.InvariantCulture) }}")) + ")";

    private static string Quote(string name) => "\"" + name + "\"";
}

/// <summary>
/// The map from the embedded catalog to the PostgreSQL one, read from both databases: every table of the SQLite
/// catalog with its columns, each given the type its PostgreSQL column has. The PostgreSQL schema is the one this
/// build creates, so it is the list of what move-up knows: a SQLite table or column it lacks (written by a newer
/// Wharf, or added to one catalog and not the other) stops the run before anything is written, rather than being
/// left behind.
/// </summary>
internal static partial class CatalogTables
{
    public static async Task<(IReadOnlyList<CatalogTable> Tables, IReadOnlyList<string> Problems)> MapAsync(
        SqliteConnection source, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        var targetColumns = await ReadTargetColumnsAsync(target, cancellationToken);
        var tables = new List<CatalogTable>();
        var problems = new List<string>();
        foreach (string table in await ReadSourceTablesAsync(source, cancellationToken))
        {
            if (!SafeName().IsMatch(table))
            {
                problems.Add($"The embedded catalog holds a table named '{table}', which is not one of Wharf's.");
                continue;
            }
            if (!targetColumns.TryGetValue(table, out var known))
            {
                problems.Add($"The embedded catalog's table '{table}' has no place in the PostgreSQL catalog of this Wharf version: it would be left behind.");
                continue;
            }
            var keys = new List<CatalogColumn>();
            var others = new List<CatalogColumn>();
            foreach (var (column, keyPosition) in await ReadSourceColumnsAsync(source, table, cancellationToken))
            {
                if (!known.TryGetValue(column, out string? type))
                {
                    problems.Add($"The embedded catalog's column '{table}.{column}' has no place in the PostgreSQL catalog of this Wharf version: it would be left behind.");
                    continue;
                }
                if (KindOf(type) is not { } kind)
                {
                    problems.Add($"The PostgreSQL column '{table}.{column}' has the type '{type}', which move-up does not write.");
                    continue;
                }
                (keyPosition > 0 ? keys : others).Add(new CatalogColumn(column, kind));
            }
            if (keys.Count == 0)
            {
                problems.Add($"The embedded catalog's table '{table}' has no primary key, so its copy cannot be compared row by row.");
                continue;
            }
            tables.Add(new CatalogTable(table, [.. keys, .. others], keys.Count));
        }
        return (tables, problems);
    }

    private static ColumnKind? KindOf(string postgresType) => postgresType switch
    {
        "text" => ColumnKind.Text,
        "bigint" => ColumnKind.Int64,
        "integer" => ColumnKind.Int32,
        "boolean" => ColumnKind.Boolean,
        "bytea" => ColumnKind.Bytes,
        _ => null,
    };

    /// <summary>The catalog's tables in SQLite (SQLite's own tables aside), by name.</summary>
    private static async Task<List<string>> ReadSourceTablesAsync(SqliteConnection source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name;";
        var names = new List<string>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            names.Add(reader.GetString(0));
        }
        return names;
    }

    /// <summary>A table's columns with their place in the primary key (0: not in it), the key's columns in key order.</summary>
    private static async Task<List<(string Column, long KeyPosition)>> ReadSourceColumnsAsync(
        SqliteConnection source, string table, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "SELECT name, pk FROM pragma_table_info($table) ORDER BY CASE WHEN pk = 0 THEN 1 ELSE 0 END, pk, cid;";
        command.Parameters.AddWithValue("$table", table);
        var columns = new List<(string, long)>();
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            columns.Add((reader.GetString(0), reader.GetInt64(1)));
        }
        return columns;
    }

    /// <summary>Every column of the PostgreSQL catalog's tables (in the connection's schema) with its type.</summary>
    private static async Task<Dictionary<string, Dictionary<string, string>>> ReadTargetColumnsAsync(
        NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        await using var command = target.CreateCommand(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema();");
        var tables = new Dictionary<string, Dictionary<string, string>>(StringComparer.Ordinal);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            string table = reader.GetString(0);
            if (!tables.TryGetValue(table, out var columns))
            {
                tables[table] = columns = new Dictionary<string, string>(StringComparer.Ordinal);
            }
            columns[reader.GetString(1)] = reader.GetString(2);
        }
        return tables;
    }

    /// <summary>The names Wharf gives its tables and columns: quoted as they are, never anything else.</summary>
    [GeneratedRegex("^[a-z_][a-z0-9_]*$")]
    private static partial Regex SafeName();
}
