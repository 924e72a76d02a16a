using System.Collections.Concurrent;
using System.Globalization;
using System.Security.Cryptography;
using Amazon.S3;
using Amazon.S3.Model;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using Npgsql;
using Wharf.Storage.FileSystem;
using Wharf.Storage.MoveUp;
using Wharf.Storage.S3;
using Wharf.Storage.Sqlite;
using Wharf.Storage.Tests.S3;
using Wharf.Testing;

namespace Wharf.Storage.Tests.MoveUp;

/// <summary>
/// An embedded store to move up and its target: a data directory whose SQLite catalog (this version's schema) holds
/// rows written straight into every table, with every column set in one row and every nullable column null in another,
/// and blobs on disk; a fresh PostgreSQL database of the test cluster and a fresh prefix of the shared s3rver bucket.
/// </summary>
internal sealed class MoveUpRig : IAsyncDisposable
{
    private readonly TempDirectory _dir = new();

    private MoveUpRig(string connectionString, S3StorageOptions s3)
    {
        ConnectionString = connectionString;
        S3Options = s3;
        DatabasePath = Path.Combine(_dir.Path, "wharf.db");
        Disk = new DiskBlobStore(Path.Combine(_dir.Path, "blobs"));
        S3 = S3ClientFactory.Create(s3);
    }

    public string DataDir => _dir.Path;

    public string DatabasePath { get; }

    public string ConnectionString { get; }

    public S3StorageOptions S3Options { get; }

    public DiskBlobStore Disk { get; }

    public AmazonS3Client S3 { get; }

    /// <summary>Blob ids written to the disk store, with their content.</summary>
    public Dictionary<string, byte[]> Blobs { get; } = new(StringComparer.Ordinal);

    public static async Task<MoveUpRig> CreateAsync()
    {
        var cluster = await PostgresCluster.Shared;
        var rig = new MoveUpRig(await cluster.CreateDatabaseAsync(), await SharedS3rver.NewOptionsAsync());
        new SqliteDatabase(rig.DatabasePath).Dispose();
        return rig;
    }

    public IEmbeddedStoreMover Mover(int blobConcurrency = 2) => new EmbeddedStoreMover(
        DataDir,
        Options.Create(new MoveUpOptions { BlobConcurrency = blobConcurrency }),
        Options.Create(new PostgresCatalogOptions { ConnectionString = ConnectionString }),
        Options.Create(S3Options),
        NullLogger<S3BlobStore>.Instance);

    public SqliteConnection OpenSource()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = DatabasePath, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    public NpgsqlConnection OpenTarget()
    {
        var connection = new NpgsqlConnection(ConnectionString);
        connection.Open();
        return connection;
    }

    /// <summary>The catalog's tables in SQLite, SQLite's own aside.</summary>
    public List<string> SourceTables()
    {
        using var source = OpenSource();
        using var command = source.CreateCommand();
        command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name;";
        using var reader = command.ExecuteReader();
        var tables = new List<string>();
        while (reader.Read())
        {
            tables.Add(reader.GetString(0));
        }
        return tables;
    }

    /// <summary>
    /// Two rows in every table of the SQLite catalog: one with every column set, one with every nullable column null.
    /// Values follow the type each column has in PostgreSQL (read from a database migrated by <see cref="Postgres.PostgresDatabase"/>):
    /// integers past 32 bits in bigint columns, the limits of integer columns, text with upper case and non-ASCII
    /// characters (key values "Zulu..." and "alpha...", which sort the other way round outside bytewise order).
    /// </summary>
    public async Task FillEveryTableAsync()
    {
        var types = await TargetTypesAsync();
        using var source = OpenSource();
        foreach (string table in SourceTables())
        {
            var columns = new List<(string Name, bool Nullable, bool Key)>();
            using (var info = source.CreateCommand())
            {
                info.CommandText = "SELECT name, \"notnull\", pk FROM pragma_table_info($t) ORDER BY cid;";
                info.Parameters.AddWithValue("$t", table);
                using var reader = info.ExecuteReader();
                while (reader.Read())
                {
                    columns.Add((reader.GetString(0), reader.GetInt64(1) == 0, reader.GetInt64(2) > 0));
                }
            }
            for (int row = 0; row < 2; row++)
            {
                using var insert = source.CreateCommand();
                insert.CommandText = $"INSERT INTO \"{table}\" ({string.Join(", ", columns.Select(c => "\"" + c.Name + "\""))}) VALUES ({string.Join(", ", columns.Select((_, i) => "$c" + i))});";
                for (int i = 0; i < columns.Count; i++)
                {
                    var (name, nullable, key) = columns[i];
                    object value = row == 1 && nullable && !key
                        ? DBNull.Value
                        : ValueFor(types.TryGetValue((table, name), out string? type) ? type : "text", table, name, row);
                    insert.Parameters.AddWithValue("$c" + i, value);
                }
                insert.ExecuteNonQuery();
            }
        }
    }

    private static object ValueFor(string postgresType, string table, string column, int row) => postgresType switch
    {
        "bigint" => 5_000_000_000L + row * 7 + column.Length,
        "integer" => row == 0 ? int.MaxValue : int.MinValue + column.Length,
        "boolean" => row == 0 ? 1L : 0L,
        "bytea" => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes($"{table}.{column}.{row}")),
        _ => row == 0 ? $"Zulu-{table}.{column}-\u00e9\u2713\U0001F600" : $"alpha-{table}.{column}",
    };

    /// <summary>The PostgreSQL type of each column, as the schema this build creates has it.</summary>
    private async Task<Dictionary<(string, string), string>> TargetTypesAsync()
    {
        await using (await Postgres.PostgresDatabase.OpenAsync(ConnectionString, CancellationToken.None))
        {
        }
        await using var target = OpenTarget();
        await using var command = new NpgsqlCommand(
            "SELECT table_name, column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema();", target);
        await using var reader = await command.ExecuteReaderAsync();
        var types = new Dictionary<(string, string), string>();
        while (await reader.ReadAsync())
        {
            types[(reader.GetString(0), reader.GetString(1))] = reader.GetString(2);
        }
        return types;
    }

    /// <summary>Writes a committed blob of <paramref name="length"/> random bytes to the disk store.</summary>
    public async Task<string> AddBlobAsync(string blobId, int length)
    {
        byte[] content = RandomNumberGenerator.GetBytes(length);
        await using (var staged = (await Disk.StageAsync(new MemoryStream(content), long.MaxValue, CancellationToken.None))!)
        {
            await staged.CommitAsync(blobId, CancellationToken.None);
        }
        Blobs[blobId] = content;
        return blobId;
    }

    public string ObjectKey(string blobId) => S3Options.KeyPrefix + "blobs/" + blobId;

    /// <summary>The object's bytes in the bucket, or null when there is none.</summary>
    public async Task<byte[]?> ObjectAsync(string blobId)
    {
        try
        {
            using var response = await S3.GetObjectAsync(S3Options.Bucket, ObjectKey(blobId));
            using var copy = new MemoryStream();
            await response.ResponseStream.CopyToAsync(copy);
            return copy.ToArray();
        }
        catch (AmazonS3Exception ex) when (ex.StatusCode == System.Net.HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    public Task PutObjectAsync(string blobId, byte[] content) => S3.PutObjectAsync(new PutObjectRequest
    {
        BucketName = S3Options.Bucket,
        Key = ObjectKey(blobId),
        InputStream = new MemoryStream(content),
        UseChunkEncoding = false,
    });

    /// <summary>Every row of <paramref name="table"/> in SQLite, each as one line of "column=value" (ordered; booleans as 0/1, bytes as hex).</summary>
    public List<string> SourceRows(string table)
    {
        using var source = OpenSource();
        using var command = source.CreateCommand();
        command.CommandText = $"SELECT * FROM \"{table}\";";
        using var reader = command.ExecuteReader();
        return Rows(reader);
    }

    public List<string> TargetRows(string table)
    {
        using var target = OpenTarget();
        using var command = new NpgsqlCommand($"SELECT * FROM \"{table}\";", target);
        using var reader = command.ExecuteReader();
        return Rows(reader);
    }

    public long TargetCount(string table)
    {
        using var target = OpenTarget();
        using var command = new NpgsqlCommand($"SELECT count(*) FROM \"{table}\";", target);
        return (long)command.ExecuteScalar()!;
    }

    public void Target(string sql)
    {
        using var target = OpenTarget();
        using var command = new NpgsqlCommand(sql, target);
        command.ExecuteNonQuery();
    }

    public void Source(string sql)
    {
        using var source = OpenSource();
        using var command = source.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    private static List<string> Rows(System.Data.Common.DbDataReader reader)
    {
        var rows = new List<string>();
        while (reader.Read())
        {
            var fields = new SortedDictionary<string, string>(StringComparer.Ordinal);
            for (int i = 0; i < reader.FieldCount; i++)
            {
                fields[reader.GetName(i)] = reader.IsDBNull(i) ? "<null>" : reader.GetValue(i) switch
                {
                    bool b => b ? "1" : "0",
                    byte[] bytes => Convert.ToHexString(bytes),
                    IFormattable number => number.ToString(null, CultureInfo.InvariantCulture),
                    var other => other.ToString()!,
                };
            }
            rows.Add(string.Join("|", fields.Select(f => f.Key + "=" + f.Value)));
        }
        rows.Sort(StringComparer.Ordinal);
        return rows;
    }

    public async ValueTask DisposeAsync()
    {
        S3.Dispose();
        await (await PostgresCluster.Shared).DropDatabaseAsync(ConnectionString);
        _dir.Dispose();
    }
}

/// <summary>What a run reported, kept for the test; optionally cancels the run at a chosen event.</summary>
internal sealed class RecordedProgress(Func<string, bool>? stopAt = null, CancellationTokenSource? stop = null) : IMoveUpProgress
{
    public ConcurrentQueue<string> Events { get; } = new();

    public MoveUpPlan? Plan { get; private set; }

    public void Started(MoveUpPlan plan)
    {
        Plan = plan;
        Record("started");
    }

    public void TableCopied(string table, long rows, long inserted) => Record($"copied {table} {rows} {inserted}");

    public void TableVerified(string table, long rows) => Record($"verified {table} {rows}");

    public void BlobDone(string blobId, long bytes, bool copied) => Record($"blob {blobId} {bytes} {(copied ? "copied" : "there")}");

    private void Record(string e)
    {
        Events.Enqueue(e);
        if (stopAt?.Invoke(e) == true)
        {
            stop?.Cancel();
        }
    }
}
