using System.Net.Http.Headers;
using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Files;

/// <summary>
/// A file above 64 MiB through the Uploads API: parts of 64 MiB sent in parallel, each streamed from the file at its
/// offset, then completed with the part ids in file order. The upload id and every accepted part are written to an
/// <see cref="UploadState"/> as they happen; run again after an interruption, the upload asks the server which parts
/// it holds (<c>GET /v1/uploads/{id}</c>) and sends only the others.
/// </summary>
internal sealed class PartedUpload(WharfClient client, UploadStateStore states)
{
    /// <summary>The largest part the server takes, and the size of every part but the last.</summary>
    public const long PartBytes = 64L * 1024 * 1024;

    public async Task<Outcome<JsonElement>> SendAsync(
        LocalFile file, UploadFields fields, int parallel, ITransferProgress progress, CancellationToken cancellationToken)
    {
        var server = client.Address;
        string purpose = fields.Purpose;
        var resumed = await ResumeAsync(file, fields, cancellationToken);
        if (!resumed.IsOk)
        {
            return resumed.Failure!;
        }
        if (resumed.Value.Finished is { } finished)
        {
            states.Forget(server, file);
            progress.Skip(file.Length);
            return finished;
        }
        var state = resumed.Value.State;
        if (state is null)
        {
            var created = await client.PostJsonAsync(
                server.Api("uploads"),
                new UploadCreateBody(file.Name, purpose, file.Length, file.MediaType, fields.Metadata, fields.Collection, fields.Provider),
                CliJson.Default.UploadCreateBody, ApiKeyKind.Workspace, cancellationToken);
            if (!created.IsOk)
            {
                return created;
            }
            string uploadId = created.Value.GetProperty("id").GetString()!;
            state = UploadStateStore.New(server, file, purpose, uploadId, PartBytes);
            states.Save(server, file, state);
        }

        int[] missing = [.. Enumerable.Range(0, state.Parts.Count).Where(i => state.Parts[i] is null)];
        long held = Enumerable.Range(0, state.Parts.Count).Where(i => state.Parts[i] is not null).Sum(i => SliceLength(state, i));
        progress.Skip(held);
        if (missing.Length < state.Parts.Count)
        {
            Output.Note($"{file.Name}: resuming {state.UploadId}, {state.Parts.Count - missing.Length} of {state.Parts.Count} parts already on the server; sending {missing.Length}.");
        }

        var sent = await SendPartsAsync(file, state, missing, parallel, progress, cancellationToken);
        if (sent is not null)
        {
            return sent;
        }
        var completed = await client.PostJsonAsync(
            server.Api($"uploads/{state.UploadId}/complete"), new UploadCompleteBody([.. state.Parts.Select(p => p!)]),
            CliJson.Default.UploadCompleteBody, ApiKeyKind.Workspace, cancellationToken);
        if (!completed.IsOk)
        {
            return completed;
        }
        states.Forget(server, file);
        return completed.Value.GetProperty("file").Clone();
    }

    /// <summary>What a recorded upload still has on the server, or its file when it was completed before the interruption.</summary>
    private sealed record Resumed(UploadState? State, JsonElement? Finished);

    private async Task<Outcome<Resumed>> ResumeAsync(LocalFile file, UploadFields fields, CancellationToken cancellationToken)
    {
        var server = client.Address;
        var state = states.Find(server, file);
        if (state is null)
        {
            return new Resumed(null, null);
        }
        var answer = await client.GetAsync(server.Api($"uploads/{state.UploadId}"), ApiKeyKind.Workspace, cancellationToken);
        if (!answer.IsOk)
        {
            // Gone (expired and swept, or another workspace's key): start again. Anything else is no answer.
            return answer.Failure!.Status == 404 ? new Resumed(null, null) : answer.Failure!;
        }
        var upload = answer.Value.Deserialize(CliJson.Default.UploadObject)!;
        if (upload.Status == "completed" && answer.Value.TryGetProperty("file", out var completedFile) && completedFile.ValueKind == JsonValueKind.Object)
        {
            return new Resumed(null, completedFile.Clone());
        }
        if (upload.Status != "pending" || state.Purpose != fields.Purpose || upload.Bytes != file.Length || !fields.WereGivenTo(upload))
        {
            if (upload.Status == "pending")
            {
                // Asked again with another purpose, provider, collection or metadata: this one is not wanted any more;
                // free what it holds.
                await client.PostAsync(server.Api($"uploads/{state.UploadId}/cancel"), null, ApiKeyKind.Workspace, cancellationToken);
            }
            return new Resumed(null, null);
        }
        return new Resumed(await MatchPartsAsync(file, state, upload.Parts ?? [], cancellationToken), null);
    }

    /// <summary>
    /// The recorded parts the server still holds; a part the server holds but the state does not name (accepted just
    /// before an interruption, before it was recorded) is recognised by its size and SHA-256 among the missing places.
    /// </summary>
    private async Task<UploadState> MatchPartsAsync(LocalFile file, UploadState state, List<UploadPartObject> onServer, CancellationToken cancellationToken)
    {
        var held = onServer.Select(p => p.Id).ToHashSet(StringComparer.Ordinal);
        var parts = state.Parts.Select(id => id is not null && held.Contains(id) ? id : null).ToList();
        var unknown = onServer.Where(p => !parts.Contains(p.Id) && p.Sha256 is not null).ToList();
        for (int i = 0; i < parts.Count && unknown.Count > 0; i++)
        {
            long length = SliceLength(state, i);
            if (parts[i] is not null || !unknown.Any(p => p.Bytes == length))
            {
                continue;
            }
            string sha256 = await HashSliceAsync(file.FullPath, i * state.PartBytes, length, cancellationToken);
            var match = unknown.FirstOrDefault(p => p.Bytes == length && string.Equals(p.Sha256, sha256, StringComparison.OrdinalIgnoreCase));
            if (match is not null)
            {
                parts[i] = match.Id;
                unknown.Remove(match);
            }
        }
        var matched = state with { Parts = parts };
        states.Save(client.Address, file, matched);
        return matched;
    }

    /// <summary>Sends the missing parts, <paramref name="parallel"/> at once, started in file order; null when all were accepted.</summary>
    private async Task<CliFailure?> SendPartsAsync(
        LocalFile file, UploadState state, int[] missing, int parallel, ITransferProgress progress, CancellationToken cancellationToken)
    {
        CliFailure? failure = null;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var options = new ParallelOptions { MaxDegreeOfParallelism = parallel, CancellationToken = stop.Token };
        var parts = state.Parts;
        try
        {
            await Parallel.ForEachAsync(missing, options, async (index, ct) =>
            {
                var sent = await SendPartAsync(file, state, index, progress, ct);
                if (!sent.IsOk)
                {
                    Interlocked.CompareExchange(ref failure, sent.Failure, null);
                    await stop.CancelAsync();
                    return;
                }
                lock (parts)
                {
                    parts[index] = sent.Value;
                    states.Save(client.Address, file, state);
                }
            });
        }
        catch (OperationCanceledException) when (failure is not null && !cancellationToken.IsCancellationRequested)
        {
        }
        return failure;
    }

    private async Task<Outcome<string>> SendPartAsync(LocalFile file, UploadState state, int index, ITransferProgress progress, CancellationToken cancellationToken)
    {
        long offset = index * state.PartBytes;
        await using var slice = new FileSliceStream(file.FullPath, offset, SliceLength(state, index), progress.Advance);
        var data = new StreamContent(slice);
        data.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        var form = new MultipartFormDataContent { { data, "data", $"{file.Name}.part{index + 1}" } };
        var answer = await client.PostAsync(client.Address.Api($"uploads/{state.UploadId}/parts"), form, ApiKeyKind.Workspace, cancellationToken);
        if (!answer.IsOk)
        {
            return answer.Failure!;
        }
        var part = answer.Value.Deserialize(CliJson.Default.UploadPartObject)!;
        if (part.Sha256 is not null && !string.Equals(part.Sha256, slice.Sha256Hex(), StringComparison.OrdinalIgnoreCase))
        {
            return CliFailure.Failed($"The server's SHA-256 of part {index + 1} of {file.Name} is not the file's: the bytes were changed on the way.");
        }
        return part.Id;
    }

    private static long SliceLength(UploadState state, int index) => Math.Min(state.PartBytes, state.Bytes - (index * state.PartBytes));

    private static async Task<string> HashSliceAsync(string path, long offset, long length, CancellationToken cancellationToken)
    {
        await using var slice = new FileSliceStream(path, offset, length, static _ => { });
        await slice.CopyToAsync(Stream.Null, cancellationToken);
        return slice.Sha256Hex();
    }
}
