using System.Collections.Concurrent;
using Microsoft.Data.Sqlite;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Npgsql;
using Wharf.Core.Ports;
using Wharf.Storage.FileSystem;
using Wharf.Storage.Postgres;
using Wharf.Storage.S3;
using Wharf.Storage.Sqlite;

namespace Wharf.Storage.MoveUp;

/// <summary>
/// One run of moving up, in order: the data directory is taken (as a server would take it, so none runs on it
/// meanwhile), its catalog brought to this version's schema, the PostgreSQL catalog opened (created or migrated) and
/// the bucket checked; the tables mapped and the target checked to be empty or an earlier run's of this store;
/// then every table copied and compared row by row, and every blob copied and compared by SHA-256.
/// </summary>
internal sealed class EmbeddedStoreMover(
    string dataDir,
    IOptions<MoveUpOptions> moveUp,
    IOptions<PostgresCatalogOptions> postgres,
    IOptions<S3StorageOptions> s3,
    ILogger<S3BlobStore> s3Logger) : IEmbeddedStoreMover
{
    // Read when the mover is made, so that invalid settings stop the command before it touches anything.
    private readonly MoveUpOptions _moveUp = moveUp.Value;
    private readonly PostgresCatalogOptions _postgres = postgres.Value;
    private readonly S3StorageOptions _s3 = s3.Value;

    public async Task<MoveUpResult> RunAsync(IMoveUpProgress progress, CancellationToken cancellationToken)
    {
        string root = Path.GetFullPath(dataDir);
        string databasePath = Path.Combine(root, "wharf.db");
        if (!File.Exists(databasePath))
        {
            return Refused($"There is no embedded store in {root} (no wharf.db): set {StorageOptions.DataDirKey} to the data directory of the Wharf to move up.");
        }
        DataDirectoryLock directoryLock;
        try
        {
            directoryLock = new DataDirectoryLock(root);
        }
        catch (InvalidOperationException ex)
        {
            return Refused(ex.Message + " Stop the Wharf server that uses it, then run move-up again.");
        }
        using (directoryLock)
        {
            // As a start of the server would: an embedded store of an earlier version is migrated to this one's schema.
            new SqliteDatabase(databasePath).Dispose();
            await using var source = new SqliteConnection(new SqliteConnectionStringBuilder
            {
                DataSource = databasePath,
                Mode = SqliteOpenMode.ReadWrite,
                Pooling = false,
            }.ToString());
            await source.OpenAsync(cancellationToken);
            if (await SchemaVersionAsync(source, cancellationToken) is var version && version != SqliteDatabase.SchemaVersion)
            {
                return Refused($"The embedded store's catalog is at schema version {version}, written by a newer Wharf than this one (version {SqliteDatabase.SchemaVersion}): move it up with the Wharf version that wrote it.");
            }

            PostgresDatabase target;
            try
            {
                target = await PostgresDatabase.OpenAsync(_postgres.ConnectionString!, cancellationToken);
            }
            catch (InvalidOperationException ex)
            {
                return Refused(ex.Message);
            }
            await using (target)
            {
                using var bucket = new S3BlobStore(S3ClientFactory.Create(_s3), _s3, s3Logger);
                try
                {
                    await bucket.CheckAsync(cancellationToken);
                }
                catch (BlobStoreException ex)
                {
                    return Refused(ex.Message);
                }
                return await MoveAsync(root, source, target.DataSource, bucket, progress, cancellationToken);
            }
        }
    }

    private async Task<MoveUpResult> MoveAsync(
        string root, SqliteConnection source, NpgsqlDataSource target, S3BlobStore bucket, IMoveUpProgress progress, CancellationToken cancellationToken)
    {
        var (tables, unknown) = await CatalogTables.MapAsync(source, target, cancellationToken);
        if (unknown.Count > 0)
        {
            return new MoveUpResult(MoveUpOutcome.Refused, unknown, new MoveUpTotals());
        }
        var sourceCounts = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var table in tables)
        {
            sourceCounts[table.Name] = await CatalogRows.CountSourceAsync(table, source, cancellationToken);
        }
        if (await TargetOwnership.CheckAsync(tables, sourceCounts, source, target, cancellationToken) is { } foreign)
        {
            return Refused(foreign);
        }

        var blobs = new BlobTransfer(new DiskBlobStore(Path.Combine(root, "blobs")), bucket, _moveUp.BlobConcurrency);
        var (blobCount, blobBytes) = await blobs.MeasureAsync(cancellationToken);
        progress.Started(new MoveUpPlan(root, DescribeTarget(), tables.Count, sourceCounts.Values.Sum(), blobCount, blobBytes));

        long rowsCopied = 0;
        foreach (var table in tables)
        {
            var (rows, inserted) = await CatalogRows.CopyAsync(table, source, target, cancellationToken);
            rowsCopied += inserted;
            progress.TableCopied(table.Name, rows, inserted);
        }
        var problems = new ConcurrentQueue<string>();
        long rowsVerified = 0;
        foreach (var table in tables)
        {
            var (sourceRows, targetRows, difference) = await CatalogRows.CompareAsync(table, source, target, cancellationToken);
            rowsVerified += sourceRows;
            if (difference is null)
            {
                progress.TableVerified(table.Name, sourceRows);
                continue;
            }
            problems.Enqueue($"table {table.Name}: {sourceRows} rows in the embedded store, {targetRows} in PostgreSQL; {difference}");
        }

        var (blobsDone, blobsCopied, bytes, bytesCopied) = await blobs.CopyAsync(progress, problems, cancellationToken);
        var totals = new MoveUpTotals
        {
            Tables = tables.Count,
            Rows = rowsVerified,
            RowsCopied = rowsCopied,
            Blobs = blobsDone,
            BlobsCopied = blobsCopied,
            Bytes = bytes,
            BytesCopied = bytesCopied,
        };
        return new MoveUpResult(problems.IsEmpty ? MoveUpOutcome.Verified : MoveUpOutcome.Mismatch, [.. problems], totals);
    }

    private static async Task<long> SchemaVersionAsync(SqliteConnection source, CancellationToken cancellationToken)
    {
        await using var command = source.CreateCommand();
        command.CommandText = "PRAGMA user_version;";
        return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
    }

    /// <summary>Where the copy goes, for the operator: database, server and bucket, never a credential.</summary>
    private string DescribeTarget()
    {
        var connection = new NpgsqlConnectionStringBuilder(_postgres.ConnectionString);
        string prefix = string.IsNullOrEmpty(_s3.KeyPrefix) ? "" : $" under '{_s3.KeyPrefix}'";
        return $"PostgreSQL database '{connection.Database}' on {connection.Host}:{connection.Port}, bucket '{_s3.Bucket}'{prefix} at {_s3.Location}";
    }

    private static MoveUpResult Refused(string problem) => new(MoveUpOutcome.Refused, [problem], new MoveUpTotals());
}
