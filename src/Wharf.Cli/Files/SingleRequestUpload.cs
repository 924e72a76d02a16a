using System.Net.Http.Headers;
using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Files;

/// <summary>A file of at most 64 MiB: one <c>POST /v1/files</c>, its bytes streamed from the disk as they are sent.</summary>
internal static class SingleRequestUpload
{
    public static async Task<Outcome<JsonElement>> SendAsync(
        WharfClient client, LocalFile file, UploadFields fields, ITransferProgress progress, CancellationToken cancellationToken)
    {
        await using var content = new FileSliceStream(file.FullPath, 0, file.Length, progress.Advance);
        var form = new MultipartFormDataContent
        {
            { new StringContent(fields.Purpose), "purpose" },
        };
        if (fields.Metadata is not null)
        {
            form.Add(new StringContent(JsonSerializer.Serialize(fields.Metadata, CliJson.Default.DictionaryStringString)), "metadata");
        }
        if (fields.Collection is not null)
        {
            form.Add(new StringContent(fields.Collection), "collection");
        }
        if (fields.Provider is not null)
        {
            form.Add(new StringContent(fields.Provider), "provider");
        }
        var bytes = new StreamContent(content);
        bytes.Headers.ContentType = new MediaTypeHeaderValue(file.MediaType);
        form.Add(bytes, "file", file.Name);

        var answer = await client.PostAsync(client.Address.Api("files"), form, ApiKeyKind.Workspace, cancellationToken);
        if (!answer.IsOk)
        {
            return answer;
        }
        var stored = answer.Value.Deserialize(CliJson.Default.FileObject);
        if (stored?.Sha256 is { } sha256 && !string.Equals(sha256, content.Sha256Hex(), StringComparison.OrdinalIgnoreCase))
        {
            return CliFailure.Failed($"The server stored {stored.Id} with a SHA-256 other than the file's: the bytes were changed on the way.");
        }
        return answer;
    }
}
