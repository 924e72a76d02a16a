namespace Wharf.Cli.Files;

/// <summary>A file to upload as it was when the command started: its full path, size and last write time.</summary>
internal sealed record LocalFile(string FullPath, long Length, DateTime LastWriteUtc)
{
    public string Name => Path.GetFileName(FullPath);

    public static Outcome<LocalFile> Open(string path)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            return CliFailure.Usage(Directory.Exists(path) ? $"'{path}' is a directory, not a file." : $"No such file: '{path}'.");
        }
        return new LocalFile(info.FullName, info.Length, info.LastWriteTimeUtc);
    }

    /// <summary>The media type the file is sent with, from its extension; the server stores it for downloads.</summary>
    public string MediaType => Path.GetExtension(FullPath).ToLowerInvariant() switch
    {
        ".jsonl" => "application/jsonl",
        ".json" => "application/json",
        ".txt" or ".md" => "text/plain",
        ".csv" => "text/csv",
        ".pdf" => "application/pdf",
        ".png" => "image/png",
        ".jpg" or ".jpeg" => "image/jpeg",
        ".gif" => "image/gif",
        ".webp" => "image/webp",
        _ => "application/octet-stream",
    };
}
