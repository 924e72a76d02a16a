using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Files;

/// <summary>Uploads one local file the way its size calls for: one request up to 64 MiB, the Uploads API above.</summary>
internal sealed class FileUploader(WharfClient client, UploadStateStore states)
{
    public async Task<Outcome<JsonElement>> UploadAsync(
        LocalFile file, UploadFields fields, int parallel, IProgressBoard board, CancellationToken cancellationToken)
    {
        bool inParts = file.Length > PartedUpload.PartBytes;
        var progress = board.AddTransfer(file.Name, file.Length);
        var uploaded = inParts
            ? await new PartedUpload(client, states).SendAsync(file, fields, parallel, progress, cancellationToken)
            : await SingleRequestUpload.SendAsync(client, file, fields, progress, cancellationToken);
        progress.Finish(uploaded.IsOk ? $"uploaded as {uploaded.Value.GetProperty("id").GetString()}" : "failed");
        return uploaded;
    }
}
