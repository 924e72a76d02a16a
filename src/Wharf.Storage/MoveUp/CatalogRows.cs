using System.Text;
using Microsoft.Data.Sqlite;
using Npgsql;
using NpgsqlTypes;

namespace Wharf.Storage.MoveUp;

/// <summary>
/// Copies a table's rows from the embedded catalog to PostgreSQL and compares them afterwards. Rows are streamed from
/// SQLite in key order and written in batches, each one <c>INSERT ... ON CONFLICT DO NOTHING</c>: a row already
/// there (from an earlier run that was cut) is skipped, so a run after a crash writes only what is missing.
/// </summary>
internal static class CatalogRows
{
    /// <summary>Rows per INSERT, fewer when their text and bytes add up to <see cref="BatchBytes"/> first.</summary>
    private const int BatchRows = 1000;

    private const long BatchBytes = 8 * 1024 * 1024;

    /// <summary>Streams every row of <paramref name="table"/> into PostgreSQL; returns how many rows it read and how many were new.</summary>
    public static async Task<(long Rows, long Inserted)> CopyAsync(
        CatalogTable table, SqliteConnection source, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        string insert = $"INSERT INTO {table.QuotedName} ({table.ColumnList}) SELECT * FROM unnest("
            + string.Join(", ", table.Columns.Select((_, i) => "@c" + i)) + ") ON CONFLICT DO NOTHING;";
        var batch = new List<object?[]>(BatchRows);
        long rows = 0, inserted = 0, batchBytes = 0;
        await foreach (var row in ReadSourceAsync(table, source, cancellationToken))
        {
            batch.Add(row);
            batchBytes += SizeOf(row);
            rows++;
            if (batch.Count >= BatchRows || batchBytes >= BatchBytes)
            {
                inserted += await InsertAsync(table, insert, batch, target, cancellationToken);
                batch.Clear();
                batchBytes = 0;
            }
        }
        if (batch.Count > 0)
        {
            inserted += await InsertAsync(table, insert, batch, target, cancellationToken);
        }
        return (rows, inserted);
    }

    /// <summary>
    /// Reads the table from both databases in key order, side by side, and returns the first difference (a row on
    /// one side only, or a column whose values differ), or null when every row is in both with every column equal.
    /// The counts are those of each side, read to the end.
    /// </summary>
    public static async Task<(long SourceRows, long TargetRows, string? Difference)> CompareAsync(
        CatalogTable table, SqliteConnection source, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        await using var sourceRows = ReadSourceAsync(table, source, cancellationToken).GetAsyncEnumerator(cancellationToken);
        await using var targetRows = ReadTargetAsync(table, target, cancellationToken).GetAsyncEnumerator(cancellationToken);
        bool hasSource = await sourceRows.MoveNextAsync(), hasTarget = await targetRows.MoveNextAsync();
        long sourceCount = 0, targetCount = 0;
        string? difference = null;
        while (hasSource || hasTarget)
        {
            int order = !hasSource ? 1 : !hasTarget ? -1 : CompareKeys(table, sourceRows.Current, targetRows.Current);
            if (difference is null)
            {
                difference = order switch
                {
                    < 0 => $"row {table.DescribeKey(sourceRows.Current)} of the embedded store is missing from PostgreSQL",
                    > 0 => $"row {table.DescribeKey(targetRows.Current)} in PostgreSQL is not in the embedded store",
                    _ => DifferingColumn(table, sourceRows.Current, targetRows.Current) is { } column
                        ? $"row {table.DescribeKey(sourceRows.Current)} differs in column '{column}'"
                        : null,
                };
            }
            if (order <= 0)
            {
                sourceCount++;
                hasSource = await sourceRows.MoveNextAsync();
            }
            if (order >= 0)
            {
                targetCount++;
                hasTarget = await targetRows.MoveNextAsync();
            }
        }
        return (sourceCount, targetCount, difference);
    }

    /// <summary>Rows of the table in the embedded catalog.</summary>
    public static async Task<long> CountSourceAsync(CatalogTable table, SqliteConnection source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = $"SELECT count(*) FROM {table.QuotedName};";
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Rows of the table in PostgreSQL.</summary>
    public static async Task<long> CountTargetAsync(CatalogTable table, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        await using var command = target.CreateCommand($"SELECT count(*) FROM {table.QuotedName};");
        return Convert.ToInt64(await command.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The table's rows in SQLite, in key order, each value as its PostgreSQL column takes it.</summary>
    private static async IAsyncEnumerable<object?[]> ReadSourceAsync(
        CatalogTable table, SqliteConnection source, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = $"SELECT {table.ColumnList} FROM {table.QuotedName} ORDER BY {table.KeyOrder("BINARY")};";
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var row = new object?[table.Columns.Count];
            for (int i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : ToTargetValue(table, table.Columns[i], reader.GetValue(i));
            }
            yield return row;
        }
    }

    /// <summary>The table's rows in PostgreSQL, in the same order.</summary>
    private static async IAsyncEnumerable<object?[]> ReadTargetAsync(
        CatalogTable table, NpgsqlDataSource target, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        await using var connection = await target.OpenConnectionAsync(cancellationToken);
        // A cursor-free stream of a large table: the reader holds one row at a time (Npgsql reads ahead in its buffer only).
        await using var command = new NpgsqlCommand(
            $"SELECT {table.ColumnList} FROM {table.QuotedName} ORDER BY {table.KeyOrder("\"C\"")};", connection);
        await using var reader = await command.ExecuteReaderAsync(cancellationToken);
        while (await reader.ReadAsync(cancellationToken))
        {
            var row = new object?[table.Columns.Count];
            for (int i = 0; i < row.Length; i++)
            {
                row[i] = reader.IsDBNull(i) ? null : reader.GetValue(i);
            }
            yield return row;
        }
    }

    /// <summary>
    /// A SQLite value as its PostgreSQL column takes it. A value of another kind than the column's (which Wharf never
    /// writes) stops the run naming the column, rather than being converted into something else.
    /// </summary>
    private static object ToTargetValue(CatalogTable table, CatalogColumn column, object value) => (column.Kind, value) switch
    {
        (ColumnKind.Text, string text) => text,
        (ColumnKind.Int64, long number) => number,
        (ColumnKind.Int32, long number) when number is >= int.MinValue and <= int.MaxValue => (int)number,
        (ColumnKind.Boolean, long number) when number is 0 or 1 => number == 1,
        (ColumnKind.Bytes, byte[] bytes) => bytes,
        _ => throw new InvalidDataException(
            $"The embedded catalog's column '{table.Name}.{column.Name}' holds a {value.GetType().Name} that is not a valid {column.Kind} value; the store cannot be moved as it is."),
    };

    private static async Task<long> InsertAsync(
        CatalogTable table, string insert, List<object?[]> batch, NpgsqlDataSource target, CancellationToken cancellationToken)
    {
        await using var command = target.CreateCommand(insert);
        for (int i = 0; i < table.Columns.Count; i++)
        {
            command.Parameters.Add(ColumnArray("@c" + i, table.Columns[i].Kind, batch, i));
        }
        return await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>One column of the batch as a typed PostgreSQL array (nulls kept), for <c>unnest</c>.</summary>
    private static NpgsqlParameter ColumnArray(string name, ColumnKind kind, List<object?[]> batch, int column) => kind switch
    {
        ColumnKind.Text => new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Text) { Value = batch.Select(r => (string?)r[column]).ToArray() },
        ColumnKind.Int64 => new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Bigint) { Value = batch.Select(r => (long?)r[column]).ToArray() },
        ColumnKind.Int32 => new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Integer) { Value = batch.Select(r => (int?)r[column]).ToArray() },
        ColumnKind.Boolean => new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Boolean) { Value = batch.Select(r => (bool?)r[column]).ToArray() },
        ColumnKind.Bytes => new NpgsqlParameter(name, NpgsqlDbType.Array | NpgsqlDbType.Bytea) { Value = batch.Select(r => (byte[]?)r[column]).ToArray() },
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    private static long SizeOf(object?[] row)
    {
        long bytes = 0;
        foreach (object? value in row)
        {
            bytes += value switch
            {
                string text => text.Length * 2L,
                byte[] data => data.Length,
                _ => 8,
            };
        }
        return bytes;
    }

    /// <summary>Key order as both databases sort: text bytewise in UTF-8 (SQLite's BINARY, PostgreSQL's "C"), numbers by value.</summary>
    private static int CompareKeys(CatalogTable table, object?[] a, object?[] b)
    {
        for (int i = 0; i < table.KeyCount; i++)
        {
            int order = (a[i], b[i]) switch
            {
                (string x, string y) => Encoding.UTF8.GetBytes(x).AsSpan().SequenceCompareTo(Encoding.UTF8.GetBytes(y)),
                (long x, long y) => x.CompareTo(y),
                (int x, int y) => x.CompareTo(y),
                (bool x, bool y) => x.CompareTo(y),
                (byte[] x, byte[] y) => x.AsSpan().SequenceCompareTo(y),
                (null, null) => 0,
                (null, _) => -1,
                (_, null) => 1,
                var (x, y) => throw new InvalidDataException(
                    $"The key column '{table.Name}.{table.Columns[i].Name}' reads as {x.GetType().Name} from SQLite and {y.GetType().Name} from PostgreSQL."),
            };
            if (order != 0)
            {
                return order;
            }
        }
        return 0;
    }

    /// <summary>The first column (key columns aside: they are equal) whose values differ, or null.</summary>
    private static string? DifferingColumn(CatalogTable table, object?[] a, object?[] b)
    {
        for (int i = table.KeyCount; i < table.Columns.Count; i++)
        {
            bool equal = (a[i], b[i]) switch
            {
                (byte[] x, byte[] y) => x.AsSpan().SequenceEqual(y),
                var (x, y) => Equals(x, y),
            };
            if (!equal)
            {
                return table.Columns[i].Name;
            }
        }
        return null;
    }
}
