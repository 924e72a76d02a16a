using Wharf.Core.Auth;

namespace Wharf.Server.Auth;

/// <summary>
/// Endpoint metadata: which key a route takes. Set on route groups (<see cref="RouteAccessExtensions"/>) and
/// enforced by <see cref="KeyGate"/>; a route without it is open (health checks).
/// </summary>
internal sealed class RouteAccess
{
    /// <summary>The operator's admin key (<c>Wharf:Auth:AdminKey</c>), and no other.</summary>
    public static readonly RouteAccess AdminKey = new(null);

    private RouteAccess(string? scope) => Scope = scope;

    /// <summary>Any workspace key, whatever its scopes (routes that only describe what the key may use).</summary>
    public static readonly RouteAccess AnyWorkspaceKey = new(string.Empty);

    /// <summary>The scope a workspace key needs; null on admin routes; empty when any workspace key will do.</summary>
    public string? Scope { get; }

    /// <summary>A workspace key that holds <paramref name="scope"/>, one of <see cref="ApiScopes.All"/>.</summary>
    public static RouteAccess WorkspaceKey(string scope) =>
        ApiScopes.IsKnown(scope) ? new(scope) : throw new ArgumentException($"'{scope}' is not a scope a key can hold.", nameof(scope));
}

internal static class RouteAccessExtensions
{
    /// <summary>The routes take a workspace key that holds <paramref name="scope"/>; the key's rate limit applies.</summary>
    public static TBuilder RequireScope<TBuilder>(this TBuilder builder, string scope) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(RouteAccess.WorkspaceKey(scope));

    /// <summary>The routes take the admin key alone.</summary>
    public static TBuilder RequireAdminKey<TBuilder>(this TBuilder builder) where TBuilder : IEndpointConventionBuilder =>
        builder.WithMetadata(RouteAccess.AdminKey);
}
