using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Files;

/// <summary>
/// Downloads a file's content to a local path, streamed, with its SHA-256 checked against the server's. A shorter file
/// already at the path is taken as an interrupted download: only the rest is asked for (<c>Range</c>, with
/// <c>If-Range</c> on the file's ETag), and the whole is checked at the end; if it does not match, the file is
/// downloaded again from its start.
/// </summary>
internal sealed class FileDownloader(WharfClient client)
{
    private const int BufferBytes = 128 * 1024;

    /// <summary>What was written where, and how much of it was already there.</summary>
    internal sealed record Downloaded(string Path, FileObject File, long ResumedFrom, bool AlreadyThere);

    /// <summary>The file object of <paramref name="fileId"/>, as the server sent it and as the CLI reads it.</summary>
    public async Task<Outcome<(JsonElement Raw, FileObject File)>> GetAsync(string fileId, CancellationToken cancellationToken)
    {
        var answer = await client.GetAsync(client.Address.Api($"files/{Uri.EscapeDataString(fileId)}"), ApiKeyKind.Workspace, cancellationToken);
        return answer.IsOk ? (answer.Value, answer.Value.Deserialize(CliJson.Default.FileObject)!) : answer.Failure!;
    }

    /// <summary>
    /// Where <c>-o</c> points: a file path, or an existing directory (then the file's own name, made safe, inside it);
    /// without <c>-o</c>, that name in the current directory.
    /// </summary>
    public static string TargetPath(string? output, FileObject file)
    {
        if (output is not null && !Directory.Exists(output))
        {
            return Path.GetFullPath(output);
        }
        return Path.GetFullPath(Path.Combine(output ?? ".", SafeName(file)));
    }

    /// <summary>The file's name as a single path segment: never a path a server-given name could steer elsewhere.</summary>
    public static string SafeName(FileObject file)
    {
        string name = Path.GetFileName(file.Filename.Replace('\\', '/'));
        var invalid = Path.GetInvalidFileNameChars();
        name = new string([.. name.Select(c => invalid.Contains(c) || char.IsControl(c) ? '_' : c)]).Trim();
        return name is "" or "." or ".." ? file.Id : name;
    }

    public async Task<Outcome<Downloaded>> DownloadAsync(
        FileObject file, string path, bool force, IProgressBoard board, CancellationToken cancellationToken)
    {
        long existing = File.Exists(path) ? new FileInfo(path).Length : 0;
        if (existing > 0 && existing >= file.Bytes)
        {
            if (existing == file.Bytes && file.Sha256 is not null
                && string.Equals(await HashOfPrefixAsync(path, existing, cancellationToken), file.Sha256, StringComparison.OrdinalIgnoreCase))
            {
                return new Downloaded(path, file, existing, AlreadyThere: true);
            }
            if (!force)
            {
                return CliFailure.Usage($"'{path}' exists and is not an interrupted download of {file.Id}.", "Give --force to overwrite it, or -o another path.");
            }
        }
        long from = force || existing >= file.Bytes ? 0 : existing;
        var progress = board.AddTransfer($"{file.Id} -> {Path.GetFileName(path)}", file.Bytes);
        var transfer = await TransferAsync(file, path, from, progress, cancellationToken);
        if (transfer.IsOk && transfer.Value.StartedAt > 0 && !HasSha256(file, transfer.Value))
        {
            // The bytes that were there are not this file's beginning: download it whole.
            Output.Note($"{path}: the partial file there was not the start of {file.Id}; downloading it again from the start.");
            transfer = await TransferAsync(file, path, 0, progress, cancellationToken);
        }
        if (transfer.IsOk && !HasSha256(file, transfer.Value))
        {
            transfer = CliFailure.Failed($"The bytes received for {file.Id} do not have its SHA-256.", "Run the download again.");
        }
        if (!transfer.IsOk)
        {
            progress.Finish("failed");
            return transfer.Failure!;
        }
        long resumedFrom = transfer.Value.StartedAt;
        progress.Finish(resumedFrom > 0 ? $"done (resumed at {Sizes.Bytes(resumedFrom)})" : "done");
        return new Downloaded(path, file, resumedFrom, AlreadyThere: false);
    }

    /// <summary>Where the bytes written started (0: the whole file) and the SHA-256 of the whole local file after.</summary>
    private sealed record Transfer(long StartedAt, string Sha256);

    /// <summary>True when the server has no SHA-256 for the file yet (nothing to check against) or it is the one received.</summary>
    private static bool HasSha256(FileObject file, Transfer transfer) =>
        file.Sha256 is null || string.Equals(transfer.Sha256, file.Sha256, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Writes the content from <paramref name="from"/> on (0: the whole file), the bytes already there hashed first.
    /// The server sends the whole file instead (200) when its ETag is no longer the one given in <c>If-Range</c>.
    /// </summary>
    private async Task<Outcome<Transfer>> TransferAsync(FileObject file, string path, long from, ITransferProgress progress, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        var request = new HttpRequestMessage(HttpMethod.Get, client.Address.Api($"files/{Uri.EscapeDataString(file.Id)}/content"));
        if (from > 0)
        {
            request.Headers.Range = new RangeHeaderValue(from, null);
            if (file.Sha256 is not null)
            {
                request.Headers.IfRange = new RangeConditionHeaderValue(new EntityTagHeaderValue($"\"{file.Sha256}\""));
            }
        }
        var sent = await client.SendAsync(request, ApiKeyKind.Workspace, cancellationToken);
        if (!sent.IsOk)
        {
            return sent.Failure!;
        }
        using var response = sent.Value;
        long start = 0;
        if (response.StatusCode == HttpStatusCode.PartialContent)
        {
            start = response.Content.Headers.ContentRange?.From ?? -1;
            if (start != from)
            {
                return CliFailure.Failed($"The server sent bytes from {start}, not from {from} as asked.");
            }
            await AppendPrefixAsync(path, start, hash, cancellationToken);
        }
        progress.Skip(start);

        await using (var target = new FileStream(path, new FileStreamOptions
        {
            Mode = start > 0 ? FileMode.Open : FileMode.Create,
            Access = FileAccess.Write,
            Share = FileShare.None,
            Options = FileOptions.Asynchronous,
        }))
        {
            target.SetLength(start);
            target.Position = start;
            await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
            var buffer = new byte[BufferBytes];
            int read;
            while ((read = await body.ReadAsync(buffer, cancellationToken)) > 0)
            {
                hash.AppendData(buffer, 0, read);
                await target.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
                progress.Advance(read);
            }
            if (target.Length != file.Bytes)
            {
                return CliFailure.Failed($"The download of {file.Id} ended after {target.Length} of {file.Bytes} bytes.", "Run it again: it resumes where it stopped.");
            }
        }
        return new Transfer(start, Convert.ToHexStringLower(hash.GetCurrentHash()));
    }

    private static async Task<string> HashOfPrefixAsync(string path, long length, CancellationToken cancellationToken)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        await AppendPrefixAsync(path, length, hash, cancellationToken);
        return Convert.ToHexStringLower(hash.GetCurrentHash());
    }

    /// <summary>Adds the first <paramref name="length"/> bytes of the local file to <paramref name="hash"/>, streamed.</summary>
    private static async Task AppendPrefixAsync(string path, long length, IncrementalHash hash, CancellationToken cancellationToken)
    {
        await using var prefix = new FileSliceStream(path, 0, length, static _ => { });
        var buffer = new byte[BufferBytes];
        int read;
        while ((read = await prefix.ReadAsync(buffer, cancellationToken)) > 0)
        {
            hash.AppendData(buffer, 0, read);
        }
    }
}
