namespace Wharf.Cli.Files;

/// <summary>Reads <c>--metadata key=value</c> options into the pairs they name.</summary>
internal static class MetadataPairs
{
    public static Outcome<Dictionary<string, string>?> Parse(string[]? pairs)
    {
        if (pairs is null || pairs.Length == 0)
        {
            return (Dictionary<string, string>?)null;
        }
        var parsed = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (string pair in pairs)
        {
            int equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
            {
                return CliFailure.Usage($"--metadata '{pair}' is not key=value.");
            }
            parsed[pair[..equals]] = pair[(equals + 1)..];
        }
        return parsed;
    }
}
