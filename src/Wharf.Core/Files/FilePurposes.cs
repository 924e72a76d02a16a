using Microsoft.Extensions.Options;

namespace Wharf.Core.Files;

/// <summary>Which purposes a client may upload with, and which a list may filter on.</summary>
public sealed class FilePurposes
{
    public const string Batch = "batch";
    public const string BatchOutput = "batch_output";

    public static readonly IReadOnlyList<string> OpenAI = ["assistants", Batch, "fine-tune", "vision", "user_data", "evals"];

    private readonly HashSet<string> _uploadable;
    private readonly HashSet<string> _listable;

    public FilePurposes(IOptions<FilesOptions> options)
    {
        Uploadable = [.. OpenAI, .. options.Value.ExtraPurposes.Where(p => !OpenAI.Contains(p) && p != BatchOutput).Distinct(StringComparer.Ordinal)];
        _uploadable = new HashSet<string>(Uploadable, StringComparer.Ordinal);
        _listable = new HashSet<string>(_uploadable, StringComparer.Ordinal) { BatchOutput };
    }

    /// <summary>The purposes a client may upload with, in a stable order for messages.</summary>
    public IReadOnlyList<string> Uploadable { get; }

    public bool CanUpload(string purpose) => _uploadable.Contains(purpose);

    /// <summary>Uploadable purposes plus <c>batch_output</c>, which only Wharf writes.</summary>
    public bool CanList(string purpose) => _listable.Contains(purpose);
}
