using Wharf.Cli.Http;

namespace Wharf.Cli.Files;

/// <summary>What an upload says about its file besides the bytes.</summary>
internal sealed record UploadFields(string Purpose, string? Provider, string? Collection, Dictionary<string, string>? Metadata)
{
    /// <summary>
    /// Whether a pending upload on the server was created with these fields (an older server, which echoes none of
    /// Wharf's extensions, made it with none: kept by Wharf only, no collection, no metadata).
    /// </summary>
    public bool WereGivenTo(UploadObject upload) =>
        (upload.Provider ?? "local") == (Provider ?? "local")
        && upload.Collection == Collection
        && (upload.Metadata ?? []).OrderBy(p => p.Key, StringComparer.Ordinal)
            .SequenceEqual((Metadata ?? []).OrderBy(p => p.Key, StringComparer.Ordinal));
}
