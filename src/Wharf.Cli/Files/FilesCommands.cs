using System.CommandLine;
using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Files;

/// <summary><c>wharf files upload|ls|get|download|rm</c>.</summary>
internal static class FilesCommands
{
    public static Command Build()
    {
        var files = new Command("files", "Upload, list, read, download and delete files.");
        files.Subcommands.Add(Upload());
        files.Subcommands.Add(List());
        files.Subcommands.Add(Get());
        files.Subcommands.Add(Download());
        files.Subcommands.Add(Remove());
        return files;
    }

    public static Option<string[]> MetadataOption(string description) => new("--metadata")
    {
        Description = description,
        Arity = ArgumentArity.ZeroOrMore,
    };

    private static Command Upload()
    {
        var paths = new Argument<string[]>("PATH") { Description = "Files to upload", Arity = ArgumentArity.OneOrMore };
        var purpose = new Option<string>("--purpose") { Description = "The files' purpose", DefaultValueFactory = _ => "user_data" };
        var provider = new Option<string?>("--provider") { Description = "Also keep a copy on this provider" };
        var metadata = MetadataOption("key=value pairs to attach (repeatable)");
        var collection = new Option<string?>("--collection") { Description = "A collection to put the files in" };
        var parallel = new Option<int>("--parallel")
        {
            Description = "Parts sent at once for a file above 64 MiB (1-16)",
            DefaultValueFactory = _ => 4,
        };
        parallel.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 16)
            {
                r.AddError("--parallel must be between 1 and 16.");
            }
        });
        var command = new Command("upload", "Upload files, with a progress bar each. Above 64 MiB in parallel parts, resumable: run the same command again after an interruption.")
        {
            paths, purpose, provider, metadata, collection, parallel,
        };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var pairs = MetadataPairs.Parse(parse.GetValue(metadata));
            if (!pairs.IsOk)
            {
                return pairs.Failure;
            }
            var locals = new List<LocalFile>();
            foreach (string path in parse.GetValue(paths)!)
            {
                var local = LocalFile.Open(path);
                if (!local.IsOk)
                {
                    return local.Failure;
                }
                locals.Add(local.Value);
            }
            var fields = new UploadFields(parse.GetValue(purpose)!, parse.GetValue(provider), parse.GetValue(collection), pairs.Value);
            var uploader = new FileUploader(context.Client, UploadStateStore.ForUser());
            int degree = parse.GetValue(parallel);
            var uploaded = await ProgressDisplay.RunTransfersAsync(async board =>
            {
                var results = new List<JsonElement>();
                foreach (var local in locals)
                {
                    var one = await uploader.UploadAsync(local, fields, degree, board, cancellationToken);
                    if (!one.IsOk)
                    {
                        return (Outcome<List<JsonElement>>)one.Failure!;
                    }
                    results.Add(one.Value);
                }
                return results;
            }, cancellationToken);
            if (!uploaded.IsOk)
            {
                return uploaded.Failure;
            }
            PrintFiles(context, uploaded.Value);
            return null;
        });
        return command;
    }

    /// <summary>One file: its object; several: a list of them (always one JSON document).</summary>
    private static void PrintFiles(CommandContext context, List<JsonElement> files)
    {
        if (context.Json)
        {
            if (files.Count == 1)
            {
                Output.Json(files[0]);
                return;
            }
            Output.Json(writer =>
            {
                writer.WriteStartObject();
                writer.WriteString("object", "list");
                writer.WriteStartArray("data");
                files.ForEach(f => f.WriteTo(writer));
                writer.WriteEndArray();
                writer.WriteEndObject();
            });
            return;
        }
        var table = FileTable();
        files.ForEach(f => FileRow(table, f));
        Output.Table(table);
    }

    private static Command List()
    {
        var purpose = new Option<string?>("--purpose") { Description = "Only files with this purpose" };
        var provider = new Option<string?>("--provider") { Description = "Only files with a copy on this provider" };
        var collection = new Option<string?>("--collection") { Description = "Only files in this collection" };
        var status = new Option<string?>("--status") { Description = "Only files with this status (uploaded, processed, error, processing)" };
        var metadata = MetadataOption("Only files with these metadata pairs, key=value (repeatable, all must match)");
        var limit = CountOption.Create("--limit", "Files per page (the server's default when not given)");
        var after = new Option<string?>("--after") { Description = "Start after this file id (a page's last_id)" };
        var order = new Option<string?>("--order") { Description = "asc or desc (default: newest first)" };
        order.AcceptOnlyFromAmong("asc", "desc");
        var all = new Option<bool>("--all") { Description = "Follow the cursors to the last page" };
        var command = new Command("ls", "List files, newest first, one page or --all.") { purpose, provider, collection, status, metadata, limit, after, order, all };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var pairs = MetadataPairs.Parse(parse.GetValue(metadata));
            if (!pairs.IsOk)
            {
                return pairs.Failure;
            }
            var query = new List<KeyValuePair<string, string?>>
            {
                new("purpose", parse.GetValue(purpose)),
                new("provider", parse.GetValue(provider)),
                new("collection", parse.GetValue(collection)),
                new("status", parse.GetValue(status)),
                new("limit", parse.GetValue(limit)?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new("order", parse.GetValue(order)),
            };
            query.AddRange((pairs.Value ?? []).Select(p => new KeyValuePair<string, string?>("metadata." + p.Key, p.Value)));
            return await Pages.PrintAsync(
                context, cursor => context.Client.Address.Api("files" + Pages.Query([.. query, new("after", cursor)])),
                ApiKeyKind.Workspace, parse.GetValue(after), parse.GetValue(all), FileTable, FileRow, "files", cancellationToken);
        });
        return command;
    }

    private static Command Get()
    {
        var id = new Argument<string>("ID") { Description = "The file id" };
        var command = new Command("get", "Show a file's metadata.") { id };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var file = await new FileDownloader(context.Client).GetAsync(parse.GetValue(id)!, cancellationToken);
            if (!file.IsOk)
            {
                return file.Failure;
            }
            if (context.Json)
            {
                Output.Json(file.Value.Raw);
                return null;
            }
            var f = file.Value.File;
            var table = Output.NewTable("field", "value");
            Output.Row(table, "id", f.Id);
            Output.Row(table, "filename", f.Filename);
            Output.Row(table, "bytes", $"{f.Bytes} ({Sizes.Bytes(f.Bytes)})");
            Output.Row(table, "purpose", f.Purpose);
            Output.Row(table, "status", f.Status);
            Output.Row(table, "provider", f.Provider);
            Output.Row(table, "collection", f.Collection);
            Output.Row(table, "created", Sizes.Time(f.CreatedAt));
            Output.Row(table, "sha256", f.Sha256);
            foreach (var pair in f.Metadata ?? [])
            {
                Output.Row(table, "metadata." + pair.Key, pair.Value);
            }
            Output.Table(table);
            return null;
        });
        return command;
    }

    private static Command Download()
    {
        var id = new Argument<string>("ID") { Description = "The file id" };
        var output = new Option<string?>("--output", "-o") { Description = "Where to write it: a file, or a directory (default: its name here)" };
        var force = new Option<bool>("--force") { Description = "Overwrite a different file at the output path" };
        var command = new Command("download", "Download a file's content with a progress bar; a shorter file at the output path is resumed.") { id, output, force };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var downloader = new FileDownloader(context.Client);
            var file = await downloader.GetAsync(parse.GetValue(id)!, cancellationToken);
            if (!file.IsOk)
            {
                return file.Failure;
            }
            string path = FileDownloader.TargetPath(parse.GetValue(output), file.Value.File);
            var downloaded = await ProgressDisplay.RunTransfersAsync(
                board => downloader.DownloadAsync(file.Value.File, path, parse.GetValue(force), board, cancellationToken), cancellationToken);
            if (!downloaded.IsOk)
            {
                return downloaded.Failure;
            }
            PrintDownloads(context, [downloaded.Value]);
            return null;
        });
        return command;
    }

    /// <summary>What was downloaded: a line each, or one JSON document (an object for one, a list for several).</summary>
    public static void PrintDownloads(CommandContext context, List<FileDownloader.Downloaded> downloads)
    {
        if (!context.Json)
        {
            foreach (var d in downloads)
            {
                string how = d.AlreadyThere ? "already there" : d.ResumedFrom > 0 ? $"resumed at byte {d.ResumedFrom}" : "downloaded";
                Output.Line($"{d.File.Id} -> {d.Path} ({Sizes.Bytes(d.File.Bytes)}, {how})");
            }
            return;
        }
        Output.Json(writer =>
        {
            bool list = downloads.Count != 1;
            if (list)
            {
                writer.WriteStartObject();
                writer.WriteString("object", "list");
                writer.WriteStartArray("data");
            }
            foreach (var d in downloads)
            {
                writer.WriteStartObject();
                writer.WriteString("id", d.File.Id);
                writer.WriteString("path", d.Path);
                writer.WriteNumber("bytes", d.File.Bytes);
                writer.WriteString("sha256", d.File.Sha256);
                writer.WriteNumber("resumed_from", d.ResumedFrom);
                writer.WriteBoolean("already_there", d.AlreadyThere);
                writer.WriteEndObject();
            }
            if (list)
            {
                writer.WriteEndArray();
                writer.WriteEndObject();
            }
        });
    }

    private static Command Remove()
    {
        var ids = new Argument<string[]>("ID") { Description = "File ids", Arity = ArgumentArity.OneOrMore };
        var command = new Command("rm", "Delete files.") { ids };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var deleted = new List<JsonElement>();
            CliFailure? last = null;
            foreach (string id in parse.GetValue(ids)!)
            {
                var answer = await context.Client.DeleteAsync(context.Client.Address.Api($"files/{Uri.EscapeDataString(id)}"), ApiKeyKind.Workspace, cancellationToken);
                if (answer.IsOk)
                {
                    deleted.Add(answer.Value);
                    if (!context.Json)
                    {
                        Output.Line($"deleted {id}");
                    }
                }
                else
                {
                    // Go on with the others; each refusal is printed, the exit code says one failed.
                    Output.Failure(answer.Failure!);
                    last = answer.Failure;
                }
            }
            if (context.Json)
            {
                Output.Json(writer =>
                {
                    writer.WriteStartObject();
                    writer.WriteString("object", "list");
                    writer.WriteStartArray("data");
                    deleted.ForEach(d => d.WriteTo(writer));
                    writer.WriteEndArray();
                    writer.WriteEndObject();
                });
            }
            return last is null ? null : new CliFailure(last.ExitCode, "Some files were not deleted (see above).");
        });
        return command;
    }

    private static Spectre.Console.Table FileTable() => Output.NewTable("ID", "FILENAME", "BYTES", "PURPOSE", "STATUS", "PROVIDER", "COLLECTION", "CREATED");

    private static void FileRow(Spectre.Console.Table table, JsonElement element)
    {
        var f = element.Deserialize(CliJson.Default.FileObject)!;
        Output.Row(table, f.Id, f.Filename, Sizes.Bytes(f.Bytes), f.Purpose, f.Status, f.Provider, f.Collection, Sizes.Time(f.CreatedAt));
    }
}
