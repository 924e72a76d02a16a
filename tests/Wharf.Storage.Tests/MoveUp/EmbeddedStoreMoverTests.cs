using Wharf.Storage.MoveUp;

namespace Wharf.Storage.Tests.MoveUp;

/// <summary>
/// Moving an embedded store (SQLite + disk) up into PostgreSQL + S3: every table and column copied with its values,
/// every blob with its bytes; a run again (after a full one, a cut one, or a crash part-way through a table) writes only
/// what is missing and ends verified; a target that is not this store's, a table or column the PostgreSQL catalog does
/// not know, a data directory in use and a changed source or corrupted object are each refused or reported, by name.
/// </summary>
public sealed class EmbeddedStoreMoverTests
{
    private static async Task<MoveUpRig> FilledRigAsync()
    {
        var rig = await MoveUpRig.CreateAsync();
        await rig.FillEveryTableAsync();
        await rig.AddBlobAsync("file-small0000000000000001", 1000);
        await rig.AddBlobAsync("part_0000000000000000000000000000000a", 9 * 1024 * 1024 + 17); // two parts of a staging upload
        await rig.AddBlobAsync("file-empty0000000000000002", 0);
        return rig;
    }

    [Fact]
    public async Task Every_table_and_every_column_is_copied_with_its_values_and_every_blob_with_its_bytes()
    {
        await using var rig = await FilledRigAsync();
        var tables = rig.SourceTables();
        Assert.True(tables.Count >= 13, string.Join(", ", tables));

        var progress = new RecordedProgress();
        var result = await rig.Mover().RunAsync(progress, CancellationToken.None);

        Assert.True(result.Outcome == MoveUpOutcome.Verified, string.Join("\n", result.Problems));
        Assert.Equal(tables.Count, result.Totals.Tables);
        Assert.Equal(2L * tables.Count, result.Totals.Rows);
        Assert.Equal(2L * tables.Count, result.Totals.RowsCopied);
        foreach (string table in tables)
        {
            Assert.Contains($"copied {table} 2 2", progress.Events);
            Assert.Contains($"verified {table} 2", progress.Events);
            // Compared here on their own terms: every column of every row, as each database gives it back.
            var source = rig.SourceRows(table);
            Assert.Equal(2, source.Count);
            Assert.Equal(source, rig.TargetRows(table));
        }

        Assert.Equal((3L, 3L), (result.Totals.Blobs, result.Totals.BlobsCopied));
        Assert.Equal(rig.Blobs.Values.Sum(b => (long)b.Length), result.Totals.Bytes);
        foreach (var (blobId, content) in rig.Blobs)
        {
            Assert.Equal(content, await rig.ObjectAsync(blobId));
        }
        Assert.Equal(new MoveUpPlan(rig.DataDir, progress.Plan!.Target, tables.Count, 2L * tables.Count, 3, result.Totals.Bytes), progress.Plan);
        Assert.DoesNotContain(Wharf.Tests.S3.S3rverProcess.SecretKey, progress.Plan.Target, StringComparison.Ordinal);
    }

    /// <summary>
    /// An upload's metadata, collection and provider (the file it becomes carries them) are moved up with it, and a
    /// change to any of them afterwards fails the verification naming the column.
    /// </summary>
    [Fact]
    public async Task An_uploads_metadata_collection_and_provider_are_moved_up_and_verified()
    {
        await using var rig = await FilledRigAsync();
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);
        var moved = rig.TargetRows("uploads");
        Assert.Equal(rig.SourceRows("uploads"), moved);
        foreach (string column in new[] { "metadata", "collection", "provider" })
        {
            Assert.Contains(moved, row => row.Contains($"{column}=Zulu-uploads.{column}-", StringComparison.Ordinal));
        }

        foreach (string column in new[] { "metadata", "collection", "provider" })
        {
            rig.Source($"UPDATE uploads SET {column} = 'changed' WHERE id LIKE 'Zulu-%';");
            var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);
            Assert.Equal(MoveUpOutcome.Mismatch, result.Outcome);
            Assert.Contains(result.Problems, p => p.StartsWith("table uploads: 2 rows in the embedded store, 2 in PostgreSQL; row (workspace_id=Zulu-uploads.workspace_id", StringComparison.Ordinal)
                && p.EndsWith($"differs in column '{column}'", StringComparison.Ordinal));
            rig.Target($"UPDATE uploads SET {column} = 'changed' WHERE id LIKE 'Zulu-%';");
        }
    }

    [Fact]
    public async Task A_second_run_writes_nothing_and_checks_everything_again()
    {
        await using var rig = await FilledRigAsync();
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);

        var progress = new RecordedProgress();
        var again = await rig.Mover().RunAsync(progress, CancellationToken.None);

        Assert.True(again.Outcome == MoveUpOutcome.Verified, string.Join("\n", again.Problems));
        Assert.Equal((0L, 0L), (again.Totals.RowsCopied, again.Totals.BlobsCopied));
        Assert.Equal(3, progress.Events.Count(e => e.StartsWith("blob ", StringComparison.Ordinal) && e.EndsWith(" there", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_run_stopped_part_way_is_finished_by_the_next_one()
    {
        await using var rig = await FilledRigAsync();
        using var stop = new CancellationTokenSource();
        var cut = new RecordedProgress(e => e.StartsWith("blob ", StringComparison.Ordinal), stop);
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => rig.Mover(blobConcurrency: 1).RunAsync(cut, stop.Token));
        var sentBeforeTheCut = cut.Events.Where(e => e.StartsWith("blob ", StringComparison.Ordinal)).ToList();
        Assert.Single(sentBeforeTheCut);

        var progress = new RecordedProgress();
        var result = await rig.Mover().RunAsync(progress, CancellationToken.None);

        Assert.True(result.Outcome == MoveUpOutcome.Verified, string.Join("\n", result.Problems));
        Assert.Equal(0, result.Totals.RowsCopied); // the rows were all written before the blobs
        Assert.Equal(2, result.Totals.BlobsCopied);
        string first = sentBeforeTheCut[0].Split(' ')[1];
        Assert.Contains(progress.Events, e => e.StartsWith($"blob {first} ", StringComparison.Ordinal) && e.EndsWith(" there", StringComparison.Ordinal));
        foreach (var (blobId, content) in rig.Blobs)
        {
            Assert.Equal(content, await rig.ObjectAsync(blobId));
        }
    }

    [Fact]
    public async Task A_crash_in_the_middle_of_tables_leaves_rows_that_the_next_run_completes()
    {
        await using var rig = await FilledRigAsync();
        // Enough rows for several INSERT batches in one table.
        rig.Source("WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2499) "
            + "INSERT INTO batch_lines (batch_id, line) SELECT 'batch_' || (i % 3), i FROM n;");
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);
        // What a crash leaves: the first batches of one table, nothing of the next, one blob not yet sent.
        rig.Target("DELETE FROM batch_lines WHERE batch_id LIKE 'batch\\_%' AND line >= 1200; DELETE FROM workspaces;");
        await rig.S3.DeleteObjectAsync(rig.S3Options.Bucket, rig.ObjectKey("file-small0000000000000001"));

        var progress = new RecordedProgress();
        var result = await rig.Mover().RunAsync(progress, CancellationToken.None);

        Assert.True(result.Outcome == MoveUpOutcome.Verified, string.Join("\n", result.Problems));
        Assert.Contains($"copied batch_lines 2502 {2500 - 1200}", progress.Events);
        Assert.Contains("copied workspaces 2 2", progress.Events);
        Assert.Contains("copied files 2 0", progress.Events);
        Assert.Equal(1, result.Totals.BlobsCopied);
        Assert.Equal(rig.SourceRows("batch_lines"), rig.TargetRows("batch_lines"));
    }

    [Fact]
    public async Task A_table_the_PostgreSQL_catalog_does_not_know_stops_the_run_before_anything_is_written()
    {
        await using var rig = await FilledRigAsync();
        rig.Source("CREATE TABLE future_things (id TEXT NOT NULL PRIMARY KEY, value TEXT) WITHOUT ROWID; INSERT INTO future_things VALUES ('a', 'b');");

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Refused, result.Outcome);
        Assert.Contains(result.Problems, p => p.Contains("'future_things'", StringComparison.Ordinal) && p.Contains("left behind", StringComparison.Ordinal));
        Assert.All(rig.SourceTables().Where(t => t != "future_things"), t => Assert.Equal(0, rig.TargetCount(t)));
        Assert.Null(await rig.ObjectAsync("file-small0000000000000001"));
    }

    [Fact]
    public async Task A_column_the_PostgreSQL_catalog_does_not_know_stops_the_run_naming_it()
    {
        await using var rig = await FilledRigAsync();
        rig.Source("ALTER TABLE files ADD COLUMN colour TEXT;");

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Refused, result.Outcome);
        Assert.Contains(result.Problems, p => p.Contains("'files.colour'", StringComparison.Ordinal));
        Assert.Equal(0, rig.TargetCount("files"));
    }

    [Fact]
    public async Task A_database_holding_another_catalog_is_refused_and_left_as_it_was()
    {
        await using var rig = await FilledRigAsync();
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);
        // A node started on the database meanwhile made a workspace of its own (as a bootstrap key does).
        rig.Target("DELETE FROM files; DELETE FROM workspaces WHERE id LIKE 'alpha-%'; INSERT INTO workspaces (id, name, created_at) VALUES ('ws_00000000000000000000000000000099', 'default', 1);");
        var before = rig.TargetRows("workspaces");

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Refused, result.Outcome);
        Assert.Contains(result.Problems, p => p.Contains("workspace ws_00000000000000000000000000000099 is not one of the embedded store's", StringComparison.Ordinal));
        Assert.Equal(0, rig.TargetCount("files"));
        Assert.Equal(before, rig.TargetRows("workspaces"));
    }

    [Fact]
    public async Task A_database_a_node_has_used_is_refused_so_a_revoked_key_is_not_put_back()
    {
        await using var rig = await FilledRigAsync();
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);
        // A node started on the moved catalog took a sweep's lease, and a key was revoked through it: no table grew and
        // no workspace was added, yet a run again would put the key back.
        Assert.NotEqual(0, rig.TargetCount("leases"));
        rig.Target("UPDATE leases SET owner = 'node_00000000000000ff' WHERE name = (SELECT min(name) FROM leases); DELETE FROM api_keys WHERE id IN (SELECT id FROM api_keys ORDER BY id LIMIT 1);");
        var keysBefore = rig.TargetRows("api_keys");

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Refused, result.Outcome);
        Assert.Contains(result.Problems, p => p.Contains("a Wharf node has used it (its lease '", StringComparison.Ordinal));
        Assert.Equal(keysBefore, rig.TargetRows("api_keys"));
    }

    [Fact]
    public async Task A_database_holding_more_rows_than_the_store_is_refused()
    {
        await using var rig = await FilledRigAsync();
        rig.Target("INSERT INTO batch_lines (batch_id, line) VALUES ('a', 1), ('a', 2), ('a', 3);");

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Refused, result.Outcome);
        Assert.Contains(result.Problems, p => p.Contains("table batch_lines holds 3 rows, the embedded store's 2", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_store_changed_since_an_earlier_run_fails_the_verification_naming_the_row_and_column()
    {
        await using var rig = await FilledRigAsync();
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);
        rig.Source("UPDATE files SET status = 'error' WHERE id LIKE 'alpha-%';");
        rig.Source("UPDATE api_keys SET hash = X'00' WHERE id LIKE 'Zulu-%';");
        // One metadata row gone and another come: the counts stay, the rows do not.
        rig.Source("DELETE FROM file_metadata WHERE key LIKE 'Zulu-%';");
        rig.Source("INSERT INTO file_metadata (workspace_id, key, value, file_id) VALUES ('zz', 'k', 'v', 'f');");

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Mismatch, result.Outcome);
        Assert.Equal(3, result.Problems.Count);
        Assert.Contains("table files: 2 rows in the embedded store, 2 in PostgreSQL; row (workspace_id=alpha-files.workspace_id, id=alpha-files.id) differs in column 'status'", result.Problems);
        Assert.Contains(result.Problems, p => p.StartsWith("table api_keys: 2 rows in the embedded store, 2 in PostgreSQL; row (id=Zulu-api_keys.id", StringComparison.Ordinal)
            && p.EndsWith("differs in column 'hash'", StringComparison.Ordinal));
        Assert.Contains(result.Problems, p => p.StartsWith("table file_metadata: 2 rows in the embedded store, 3 in PostgreSQL; row (workspace_id=Zulu-file_metadata.workspace_id", StringComparison.Ordinal)
            && p.EndsWith("in PostgreSQL is not in the embedded store", StringComparison.Ordinal));
        Assert.Equal(0, result.Totals.BlobsCopied);
    }

    [Fact]
    public async Task A_corrupted_object_fails_the_verification_naming_the_blob_and_one_of_another_length_is_sent_again()
    {
        await using var rig = await FilledRigAsync();
        Assert.Equal(MoveUpOutcome.Verified, (await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None)).Outcome);
        const string Corrupted = "part_0000000000000000000000000000000a";
        const string Truncated = "file-small0000000000000001";
        byte[] flipped = (byte[])rig.Blobs[Corrupted].Clone();
        flipped[4_000_000] ^= 0x01;
        await rig.PutObjectAsync(Corrupted, flipped);
        await rig.PutObjectAsync(Truncated, rig.Blobs[Truncated][..10]);

        var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

        Assert.Equal(MoveUpOutcome.Mismatch, result.Outcome);
        string problem = Assert.Single(result.Problems);
        Assert.StartsWith($"blob {Corrupted}: the object in the bucket ({flipped.Length} bytes, SHA-256 ", problem, StringComparison.Ordinal);
        Assert.Equal(1, result.Totals.BlobsCopied);
        Assert.Equal(rig.Blobs[Truncated], await rig.ObjectAsync(Truncated));
    }

    [Fact]
    public async Task A_data_directory_in_use_by_a_server_is_refused()
    {
        await using var rig = await FilledRigAsync();
        using (new DataDirectoryLock(rig.DataDir))
        {
            var result = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);

            Assert.Equal(MoveUpOutcome.Refused, result.Outcome);
            Assert.Contains("in use by another Wharf process", Assert.Single(result.Problems), StringComparison.Ordinal);
        }
        Assert.Equal(0, rig.TargetCount("workspaces"));
    }

    [Fact]
    public async Task A_directory_without_an_embedded_store_or_with_a_newer_one_is_refused()
    {
        await using var rig = await FilledRigAsync();
        rig.Source("PRAGMA user_version = 99;");
        var newer = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);
        Assert.Equal(MoveUpOutcome.Refused, newer.Outcome);
        Assert.Contains("schema version 99, written by a newer Wharf", Assert.Single(newer.Problems), StringComparison.Ordinal);

        File.Delete(rig.DatabasePath);
        var none = await rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None);
        Assert.Equal(MoveUpOutcome.Refused, none.Outcome);
        Assert.Contains("no wharf.db", Assert.Single(none.Problems), StringComparison.Ordinal);
        Assert.False(File.Exists(rig.DatabasePath));
    }

    [Fact]
    public async Task A_value_of_the_wrong_kind_stops_the_run_naming_its_column()
    {
        await using var rig = await FilledRigAsync();
        rig.Source("UPDATE files SET bytes = 'many' WHERE id LIKE 'alpha-%';");

        var failure = await Assert.ThrowsAsync<InvalidDataException>(() => rig.Mover().RunAsync(new RecordedProgress(), CancellationToken.None));

        Assert.Contains("'files.bytes'", failure.Message, StringComparison.Ordinal);
    }
}
