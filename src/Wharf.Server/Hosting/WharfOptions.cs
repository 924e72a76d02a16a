using System.ComponentModel.DataAnnotations;

namespace Wharf.Server.Hosting;

/// <summary>Options under <c>Wharf</c> (files: <see cref="Core.Files.FilesOptions"/> under <c>Wharf:Files</c>).</summary>
internal sealed class WharfOptions
{
    public const string Section = "Wharf";

    /// <summary>The one directory the embedded store writes: <c>wharf.db</c> and <c>blobs/</c>.</summary>
    [Required(AllowEmptyStrings = false)]
    public string DataDir { get; set; } = "./data";

    public AuthOptions Auth { get; set; } = new();

    public SweeperOptions Sweeper { get; set; } = new();
}

internal sealed class AuthOptions
{
    /// <summary>When set, workspace <c>default</c> holds this key (idempotent across restarts).</summary>
    public string? BootstrapKey { get; set; }

    /// <summary>Enables the admin API (a later issue); kept here so configuration can already name it.</summary>
    public string? AdminKey { get; set; }
}

internal sealed class SweeperOptions
{
    /// <summary>Seconds between sweeps of expired files and orphaned blobs.</summary>
    [Range(1, 86_400)]
    public int IntervalSeconds { get; set; } = 60;

    /// <summary>A blob without a catalog row is removed once it is this old (seconds).</summary>
    [Range(0, 7 * 86_400)]
    public int OrphanGraceSeconds { get; set; } = 600;
}
