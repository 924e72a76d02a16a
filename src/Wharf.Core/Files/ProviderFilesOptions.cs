using System.ComponentModel.DataAnnotations;

namespace Wharf.Core.Files;

/// <summary>Options under <c>Wharf:ProviderFiles</c>: files kept on upstream providers as well as in Wharf.</summary>
public sealed class ProviderFilesOptions
{
    public const string Section = "Wharf:ProviderFiles";

    /// <summary>
    /// How long <c>DELETE /v1/files/{id}</c> waits for the upstream deletes of the file's copies before it answers
    /// (the file is gone from Wharf before they start); one not done by then is left to the sweeper.
    /// </summary>
    [Range(0, 60)]
    public double DeleteWaitSeconds { get; set; } = 5;

    /// <summary>Seconds between two passes of the sweeper of upstream deletions and interrupted copies.</summary>
    [Range(1, 86_400)]
    public int SweepIntervalSeconds { get; set; } = 30;

    /// <summary>Wait before the second attempt of a failed upstream delete; it doubles with every attempt after.</summary>
    [Range(1, 86_400)]
    public int RetryBaseSeconds { get; set; } = 30;

    /// <summary>The longest wait between two attempts of an upstream delete.</summary>
    [Range(1, 604_800)]
    public int RetryMaxSeconds { get; set; } = 3600;

    /// <summary>
    /// A copy still being made after this long was cut by a stop of the process: the sweeper then looks for what
    /// the upstream may hold of it. Longer than the slowest upload to a provider.
    /// </summary>
    [Range(60, 604_800)]
    public int InterruptedCopyGraceSeconds { get; set; } = 3600;
}
