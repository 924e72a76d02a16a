using Wharf.Core.Auth;

namespace Wharf.Core.Providers;

/// <summary>Which configured providers a workspace may use: the one rule for listing and for routing.</summary>
public static class ProviderAccess
{
    /// <summary>The id of Wharf's own store, always configured and always usable.</summary>
    public const string Local = "local";

    /// <summary>Enabled, and named by the workspace's <c>allowed_providers</c> (null: all); <c>local</c> always.</summary>
    public static bool IsUsableBy(this RegisteredProvider provider, Workspace workspace) =>
        provider.Id == Local || provider.Enabled && (workspace.AllowedProviders is not { } allowed || allowed.Contains(provider.Id));
}
