namespace Wharf.Cli.Files;

/// <summary>What an upload says about its file besides the bytes.</summary>
internal sealed record UploadFields(string Purpose, string? Provider, string? Collection, Dictionary<string, string>? Metadata)
{
    /// <summary>Fields only <c>POST /v1/files</c> takes: the Uploads API has no provider, collection or metadata.</summary>
    public bool HasFileOnlyFields => Provider is not null || Collection is not null || Metadata is not null;
}
