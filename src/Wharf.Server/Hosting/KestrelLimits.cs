using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Options;

namespace Wharf.Server.Hosting;

/// <summary>
/// Sets Kestrel's connection limits and timeouts from <see cref="ServerLimitsOptions"/>, so that idle or silent
/// clients can neither hold connections for minutes nor take every file descriptor: past the limit a connection is
/// accepted and closed at once, and the process always keeps descriptors for its own files.
/// </summary>
internal sealed partial class KestrelLimits(IOptions<ServerLimitsOptions> options, ILogger<KestrelLimits> logger)
    : IConfigureOptions<KestrelServerOptions>
{
    public void Configure(KestrelServerOptions kestrel)
    {
        var server = options.Value;
        long? descriptors = FileDescriptorLimit.Current;
        long? connections = server.MaxConcurrentConnections
            ?? (descriptors is { } limit ? FileDescriptorLimit.ConnectionsWithin(limit) - server.MaxConcurrentUpgradedConnections : null);

        var limits = kestrel.Limits;
        limits.MaxConcurrentConnections = connections;
        limits.MaxConcurrentUpgradedConnections = server.MaxConcurrentUpgradedConnections;
        limits.KeepAliveTimeout = TimeSpan.FromSeconds(server.KeepAliveTimeoutSeconds);
        limits.RequestHeadersTimeout = TimeSpan.FromSeconds(server.RequestHeadersTimeoutSeconds);
        limits.MinRequestBodyDataRate = new MinDataRate(server.MinRequestBodyBytesPerSecond, TimeSpan.FromSeconds(server.MinRequestBodyGraceSeconds));

        if (descriptors is { } fileLimit)
        {
            if (fileLimit < FileDescriptorLimit.LowLimit)
            {
                LowDescriptorLimit(logger, fileLimit, connections ?? 0);
            }
            else
            {
                ConnectionLimit(logger, connections ?? 0, fileLimit);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning,
        Message = "This process may open only {Descriptors} files (RLIMIT_NOFILE), so Wharf serves at most {Connections} connections at once; raise the limit (ulimit -n, LimitNOFILE=) to serve more clients.")]
    private static partial void LowDescriptorLimit(ILogger logger, long descriptors, long connections);

    [LoggerMessage(Level = LogLevel.Information, Message = "Serving at most {Connections} connections at once ({Descriptors} file descriptors).")]
    private static partial void ConnectionLimit(ILogger logger, long connections, long descriptors);
}

/// <summary>Refuses a connection limit the process's file-descriptor limit cannot hold.</summary>
internal sealed class ServerLimitsValidation : IValidateOptions<ServerLimitsOptions>
{
    public ValidateOptionsResult Validate(string? name, ServerLimitsOptions options)
    {
        if (FileDescriptorLimit.Current is not { } descriptors)
        {
            return ValidateOptionsResult.Success;
        }
        long fits = FileDescriptorLimit.ConnectionsWithin(descriptors);
        // Unset, the plain connections take what the upgraded ones leave, and at least one must be left.
        long wanted = options.MaxConcurrentConnections ?? 1;
        return wanted + options.MaxConcurrentUpgradedConnections <= fits
            ? ValidateOptionsResult.Success
            : ValidateOptionsResult.Fail(
                $"Wharf:Server:MaxConcurrentConnections ({options.MaxConcurrentConnections?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "unset"}) and MaxConcurrentUpgradedConnections ({options.MaxConcurrentUpgradedConnections}) "
                + $"need more files than this process may open ({descriptors}): each connection takes up to {FileDescriptorLimit.PerConnection} "
                + $"and {FileDescriptorLimit.Reserved} are kept for the runtime and the store, so at most {fits} connections fit. "
                + "Raise the limit (ulimit -n) or lower the option.");
    }
}
