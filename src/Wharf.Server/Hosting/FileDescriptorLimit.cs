using System.Runtime.InteropServices;

namespace Wharf.Server.Hosting;

/// <summary>
/// How many files (sockets included) this process may hold open: the soft <c>RLIMIT_NOFILE</c>, the one past which
/// <c>accept</c> and <c>open</c> fail with EMFILE. The .NET runtime raises the soft limit to the hard one as it
/// starts, so the value read here is what the server really has. Null where there is no such limit (Windows) or it
/// cannot be read.
/// </summary>
internal static partial class FileDescriptorLimit
{
    /// <summary>Descriptors kept aside for the runtime (its assemblies alone hold about 200), SQLite, logs and pipes.</summary>
    public const int Reserved = 384;

    /// <summary>Descriptors a connection may need at once: its socket and one file it reads or writes.</summary>
    public const int PerConnection = 2;

    /// <summary>Below this many descriptors, the start logs a warning.</summary>
    public const long LowLimit = 4096;

    public static long? Current { get; } = Read();

    /// <summary>The most connections that fit in <paramref name="limit"/> descriptors, at least 1.</summary>
    public static long ConnectionsWithin(long limit) => Math.Max(1, (limit - Reserved) / PerConnection);

    private static long? Read()
    {
        int resource = OperatingSystem.IsLinux() ? 7 : OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD() ? 8 : -1;
        if (resource < 0)
        {
            return null;
        }
        try
        {
            if (GetRLimit(resource, out var limit) != 0)
            {
                return null;
            }
            // RLIM_INFINITY is all ones; anything that large is no limit in practice.
            return limit.Current >= long.MaxValue ? null : (long)limit.Current;
        }
        catch (Exception ex) when (ex is DllNotFoundException or EntryPointNotFoundException)
        {
            return null;
        }
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct RLimit
    {
        public ulong Current;
        public ulong Maximum;
    }

    [LibraryImport("libc", EntryPoint = "getrlimit")]
    private static partial int GetRLimit(int resource, out RLimit limit);
}
