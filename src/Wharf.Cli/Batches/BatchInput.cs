using System.Text;
using System.Text.Json.Nodes;
using Wharf.Cli.Files;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Batches;

/// <summary>
/// The input of <c>wharf batches create</c>: a local JSONL file, uploaded with purpose <c>batch</c> (with
/// <c>--model</c>, a copy whose every line's <c>body.model</c> is that model), or the id of a file already there.
/// </summary>
internal sealed class BatchInput(WharfClient client)
{
    public async Task<Outcome<string>> ResolveAsync(string source, string? model, IProgressBoard board, CancellationToken cancellationToken)
    {
        if (!File.Exists(source))
        {
            if (source.StartsWith("file-", StringComparison.Ordinal) && model is null)
            {
                return source;
            }
            return CliFailure.Usage(
                source.StartsWith("file-", StringComparison.Ordinal)
                    ? "--model applies to a local file, not to a file id."
                    : $"No such file: '{source}' (give a JSONL file or a file id).");
        }
        // The copy keeps the file's name (the name the server records), in a directory of its own.
        string? scratch = model is null ? null : Directory.CreateTempSubdirectory("wharf-batch-").FullName;
        string? rewritten = scratch is null ? null : Path.Combine(scratch, Path.GetFileName(source));
        try
        {
            if (model is not null)
            {
                var written = await WithModelAsync(source, rewritten!, model, cancellationToken);
                if (written is not null)
                {
                    return written;
                }
            }
            var local = LocalFile.Open(rewritten ?? source);
            if (!local.IsOk)
            {
                return local.Failure!;
            }
            var uploaded = await new FileUploader(client, UploadStateStore.ForUser())
                .UploadAsync(local.Value, new UploadFields("batch", null, null, null), parallel: 4, board, cancellationToken);
            return uploaded.IsOk ? uploaded.Value.GetProperty("id").GetString()! : uploaded.Failure!;
        }
        finally
        {
            if (scratch is not null)
            {
                Directory.Delete(scratch, recursive: true);
            }
        }
    }

    /// <summary>Copies the JSONL file line by line (one line in memory at a time), setting each request's model.</summary>
    private static async Task<CliFailure?> WithModelAsync(string source, string target, string model, CancellationToken cancellationToken)
    {
        using var reader = new StreamReader(source, Encoding.UTF8);
        await using var writer = new StreamWriter(target, append: false, new UTF8Encoding(encoderShouldEmitUTF8Identifier: false));
        int number = 0;
        while (await reader.ReadLineAsync(cancellationToken) is { } line)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }
            JsonNode? request;
            try
            {
                request = JsonNode.Parse(line);
            }
            catch (System.Text.Json.JsonException e)
            {
                return CliFailure.Usage($"Line {number} of '{source}' is not JSON: {e.Message}");
            }
            if (request is not JsonObject { } fields || fields["body"] is not JsonObject body)
            {
                return CliFailure.Usage($"Line {number} of '{source}' has no 'body' object to set the model in.");
            }
            body["model"] = model;
            await writer.WriteAsync(fields.ToJsonString());
            await writer.WriteAsync('\n');
        }
        return null;
    }
}
