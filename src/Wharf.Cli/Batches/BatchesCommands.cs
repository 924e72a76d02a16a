using System.CommandLine;
using System.Text.Json;
using Wharf.Cli.Files;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Batches;

/// <summary><c>wharf batches create|ls|get|cancel|watch|results</c>.</summary>
internal static class BatchesCommands
{
    public static Command Build()
    {
        var batches = new Command("batches", "Create, follow, cancel batches and download their results.");
        batches.Subcommands.Add(Create());
        batches.Subcommands.Add(List());
        batches.Subcommands.Add(Get());
        batches.Subcommands.Add(Cancel());
        batches.Subcommands.Add(Watch());
        batches.Subcommands.Add(Results());
        return batches;
    }

    private static Command Create()
    {
        var input = new Argument<string>("FILE") { Description = "A JSONL file of requests (uploaded with purpose batch), or a file id" };
        var endpoint = new Option<string>("--endpoint") { Description = "The endpoint every line calls, e.g. /v1/chat/completions", Required = true };
        var model = new Option<string?>("--model") { Description = "Set this model in every line of FILE before uploading it" };
        var window = new Option<string>("--completion-window") { Description = "The completion window", DefaultValueFactory = _ => "24h" };
        var metadata = FilesCommands.MetadataOption("key=value pairs to attach to the batch (repeatable)");
        var wait = new Option<bool>("--wait") { Description = "Follow the batch with a progress bar until it ends" };
        var command = new Command("create", "Create a batch from a JSONL file or a file id.") { input, endpoint, model, window, metadata, wait };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var pairs = MetadataPairs.Parse(parse.GetValue(metadata));
            if (!pairs.IsOk)
            {
                return pairs.Failure;
            }
            var fileId = await ProgressDisplay.RunTransfersAsync(
                board => new BatchInput(context.Client).ResolveAsync(parse.GetValue(input)!, parse.GetValue(model), board, cancellationToken),
                cancellationToken);
            if (!fileId.IsOk)
            {
                return fileId.Failure;
            }
            var created = await context.Client.PostJsonAsync(
                context.Client.Address.Api("batches"),
                new BatchCreateBody(fileId.Value, parse.GetValue(endpoint)!, parse.GetValue(window)!, pairs.Value),
                CliJson.Default.BatchCreateBody, ApiKeyKind.Workspace, cancellationToken);
            if (!created.IsOk)
            {
                return created.Failure;
            }
            if (!parse.GetValue(wait))
            {
                PrintBatch(context, created.Value);
                return null;
            }
            return await WatchAndPrintAsync(context, created.Value.GetProperty("id").GetString()!, cancellationToken);
        });
        return command;
    }

    private static Command List()
    {
        var limit = CountOption.Create("--limit", "Batches per page (1-100, default 20)");
        var after = new Option<string?>("--after") { Description = "Start after this batch id (a page's last_id)" };
        var all = new Option<bool>("--all") { Description = "Follow the cursors to the last page" };
        var command = new Command("ls", "List batches, newest first.") { limit, after, all };
        CliApp.Handle(command, (parse, context, cancellationToken) => Pages.PrintAsync(
            context,
            cursor => context.Client.Address.Api("batches" + Pages.Query(
            [
                new("limit", parse.GetValue(limit)?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new("after", cursor),
            ])),
            ApiKeyKind.Workspace, parse.GetValue(after), parse.GetValue(all), BatchTable, BatchRow, "batches", cancellationToken));
        return command;
    }

    private static Command Get()
    {
        var id = new Argument<string>("ID") { Description = "The batch id" };
        var command = new Command("get", "Show a batch.") { id };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var batch = await context.Client.GetAsync(BatchUri(context, parse.GetValue(id)!), ApiKeyKind.Workspace, cancellationToken);
            if (!batch.IsOk)
            {
                return batch.Failure;
            }
            PrintBatch(context, batch.Value);
            return null;
        });
        return command;
    }

    private static Command Cancel()
    {
        var id = new Argument<string>("ID") { Description = "The batch id" };
        var command = new Command("cancel", "Cancel a batch: it stops sending and keeps what finished.") { id };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var batch = await context.Client.PostAsync(
                new Uri(BatchUri(context, parse.GetValue(id)!) + "/cancel"), null, ApiKeyKind.Workspace, cancellationToken);
            if (!batch.IsOk)
            {
                return batch.Failure;
            }
            PrintBatch(context, batch.Value);
            return null;
        });
        return command;
    }

    private static Command Watch()
    {
        var id = new Argument<string>("ID") { Description = "The batch id" };
        var command = new Command("watch", "Follow a batch with a progress bar of its request counts until it ends.") { id };
        CliApp.Handle(command, (parse, context, cancellationToken) => WatchAndPrintAsync(context, parse.GetValue(id)!, cancellationToken));
        return command;
    }

    private static Command Results()
    {
        var id = new Argument<string>("ID") { Description = "The batch id" };
        var output = new Option<string?>("--output", "-o") { Description = "The directory to write them in (default: here)" };
        var force = new Option<bool>("--force") { Description = "Overwrite different files of the same names" };
        var command = new Command("results", "Download a batch's output and error files (<batch>_output.jsonl, <batch>_errors.jsonl).") { id, output, force };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            string batchId = parse.GetValue(id)!;
            var answer = await context.Client.GetAsync(BatchUri(context, batchId), ApiKeyKind.Workspace, cancellationToken);
            if (!answer.IsOk)
            {
                return answer.Failure;
            }
            var batch = answer.Value.Deserialize(CliJson.Default.BatchObject)!;
            var wanted = new List<(string FileId, string Name)>();
            if (batch.OutputFileId is { } outputId)
            {
                wanted.Add((outputId, $"{batch.Id}_output.jsonl"));
            }
            if (batch.ErrorFileId is { } errorId)
            {
                wanted.Add((errorId, $"{batch.Id}_errors.jsonl"));
            }
            if (wanted.Count == 0)
            {
                return CliFailure.Failed($"Batch {batch.Id} has no result files yet (status {batch.Status}).", $"Wait for it: wharf batches watch {batch.Id}");
            }
            string directory = Path.GetFullPath(parse.GetValue(output) ?? ".");
            Directory.CreateDirectory(directory);
            var downloader = new FileDownloader(context.Client);
            var downloads = await ProgressDisplay.RunTransfersAsync(async board =>
            {
                var done = new List<FileDownloader.Downloaded>();
                foreach (var (fileId, name) in wanted)
                {
                    var file = await downloader.GetAsync(fileId, cancellationToken);
                    if (!file.IsOk)
                    {
                        return (Outcome<List<FileDownloader.Downloaded>>)file.Failure!;
                    }
                    var one = await downloader.DownloadAsync(file.Value.File, Path.Combine(directory, name), parse.GetValue(force), board, cancellationToken);
                    if (!one.IsOk)
                    {
                        return one.Failure!;
                    }
                    done.Add(one.Value);
                }
                return done;
            }, cancellationToken);
            if (!downloads.IsOk)
            {
                return downloads.Failure;
            }
            FilesCommands.PrintDownloads(context, downloads.Value);
            return null;
        });
        return command;
    }

    private static async Task<CliFailure?> WatchAndPrintAsync(CommandContext context, string batchId, CancellationToken cancellationToken)
    {
        var watcher = new BatchWatcher(context.Client);
        var final = await ProgressDisplay.RunBatchesAsync(
            board => watcher.WatchAsync(batchId, board.AddBatch(batchId), cancellationToken), cancellationToken);
        if (!final.IsOk)
        {
            return final.Failure;
        }
        PrintBatch(context, final.Value);
        return BatchWatcher.Verdict(final.Value);
    }

    private static Uri BatchUri(CommandContext context, string id) => context.Client.Address.Api($"batches/{Uri.EscapeDataString(id)}");

    private static void PrintBatch(CommandContext context, JsonElement answer)
    {
        if (context.Json)
        {
            Output.Json(answer);
            return;
        }
        var b = answer.Deserialize(CliJson.Default.BatchObject)!;
        var table = Output.NewTable("field", "value");
        Output.Row(table, "id", b.Id);
        Output.Row(table, "status", b.Status);
        Output.Row(table, "endpoint", b.Endpoint);
        Output.Row(table, "input_file_id", b.InputFileId);
        Output.Row(table, "requests", Counts(b));
        Output.Row(table, "output_file_id", b.OutputFileId);
        Output.Row(table, "error_file_id", b.ErrorFileId);
        Output.Row(table, "created", Sizes.Time(b.CreatedAt));
        foreach (var error in b.Errors?.Data ?? [])
        {
            Output.Row(table, "error", $"{error.Code}: {error.Message}{(error.Line is { } line ? $" (line {line})" : "")}");
        }
        Output.Table(table);
    }

    private static string Counts(BatchObject b) =>
        b.RequestCounts is { } c ? $"{c.Completed} completed, {c.Failed} failed of {c.Total}" : "";

    private static Spectre.Console.Table BatchTable() => Output.NewTable("ID", "STATUS", "ENDPOINT", "REQUESTS", "CREATED");

    private static void BatchRow(Spectre.Console.Table table, JsonElement element)
    {
        var b = element.Deserialize(CliJson.Default.BatchObject)!;
        Output.Row(table, b.Id, b.Status, b.Endpoint, Counts(b), Sizes.Time(b.CreatedAt));
    }
}
