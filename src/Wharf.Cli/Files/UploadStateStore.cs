using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wharf.Cli.Http;

namespace Wharf.Cli.Files;

/// <summary>
/// What the CLI remembers of an upload in parts, to resume it: the server, the file as it was (path, size, last write
/// time), the upload id, the part size and the id of each part the server accepted, by its place in the file.
/// </summary>
internal sealed record UploadState(
    string Server, string Path, long Bytes, long LastWriteTicks, string Purpose, string UploadId, long PartBytes, List<string?> Parts);

/// <summary>
/// Upload states, one small JSON file each under the user's configuration directory (<c>$XDG_CONFIG_HOME/wharf/uploads</c>,
/// else <c>~/.config/wharf/uploads</c>), named by a hash of server, path, size and last write time: a changed
/// file is a new upload, and two CLIs uploading different files never write the same state file.
/// </summary>
internal sealed class UploadStateStore
{
    private readonly string _directory;
    private readonly Lock _gate = new();

    public UploadStateStore(string directory) => _directory = directory;

    public static UploadStateStore ForUser() =>
        new(System.IO.Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.ApplicationData, Environment.SpecialFolderOption.DoNotVerify), "wharf", "uploads"));

    public UploadState? Find(ServerAddress server, LocalFile file)
    {
        string path = PathOf(server, file);
        try
        {
            var state = JsonSerializer.Deserialize(File.ReadAllBytes(path), CliJson.Default.UploadState);
            return state is not null && state.Path == file.FullPath && state.Bytes == file.Length ? state : null;
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException or JsonException)
        {
            return null;
        }
    }

    /// <summary>Writes the state whole (a temp file renamed over the old one), so a crash never leaves half of it.</summary>
    public void Save(ServerAddress server, LocalFile file, UploadState state)
    {
        lock (_gate)
        {
            Directory.CreateDirectory(_directory);
            string path = PathOf(server, file);
            string temp = path + ".tmp";
            File.WriteAllBytes(temp, JsonSerializer.SerializeToUtf8Bytes(state, CliJson.Default.UploadState));
            File.Move(temp, path, overwrite: true);
        }
    }

    public void Forget(ServerAddress server, LocalFile file)
    {
        lock (_gate)
        {
            File.Delete(PathOf(server, file));
        }
    }

    public static UploadState New(ServerAddress server, LocalFile file, string purpose, string uploadId, long partBytes) =>
        new(server.Root.ToString(), file.FullPath, file.Length, file.LastWriteUtc.Ticks, purpose, uploadId, partBytes,
            [.. Enumerable.Repeat<string?>(null, PartCount(file.Length, partBytes))]);

    public static int PartCount(long bytes, long partBytes) => (int)Math.Max(1, (bytes + partBytes - 1) / partBytes);

    private string PathOf(ServerAddress server, LocalFile file)
    {
        string key = $"{server.Root}\n{file.FullPath}\n{file.Length}\n{file.LastWriteUtc.Ticks}";
        return System.IO.Path.Combine(_directory, Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(key)))[..32] + ".json");
    }
}
