using Microsoft.AspNetCore.Http.HttpResults;
using Wharf.Core.Auth;
using Wharf.Core.Errors;
using Wharf.Core.Files;
using Wharf.Core.Tenancy;
using Wharf.Server.Auth;
using Wharf.Server.Errors;

namespace Wharf.Server.Api;

/// <summary>
/// The admin API: workspaces and their keys, and the providers' recent outcomes (<see cref="ProvidersApi"/>), behind
/// the operator's admin key.
/// </summary>
internal static class AdminApi
{
    private const int MaxBodyBytes = 64 * 1024;

    public static IEndpointRouteBuilder MapAdminApi(this IEndpointRouteBuilder app)
    {
        var admin = app.MapGroup("/admin").RequireAdminKey().WithTags("Admin");
        admin.MapPost("/workspaces", CreateWorkspace).WithSummary("Create a workspace").Accepts<WorkspaceBody>("application/json");
        admin.MapGet("/workspaces", ListWorkspaces).WithSummary("List workspaces");
        admin.MapGet("/workspaces/{id}", GetWorkspace).WithSummary("Retrieve a workspace, with its usage");
        admin.MapMethods("/workspaces/{id}", ["PATCH"], UpdateWorkspace).WithSummary("Change a workspace's settings")
            .Accepts<WorkspaceBody>("application/json");
        admin.MapDelete("/workspaces/{id}", DeleteWorkspace).WithSummary("Delete a workspace and everything it holds");
        admin.MapPost("/workspaces/{id}/keys", CreateKey).WithSummary("Create an API key (its secret is in this answer only)")
            .Accepts<KeyCreateBody>("application/json");
        admin.MapGet("/workspaces/{id}/keys", ListKeys).WithSummary("List a workspace's keys (never their secrets)");
        admin.MapDelete("/keys/{id}", RevokeKey).WithSummary("Revoke an API key");
        admin.MapAdminProvidersApi();
        return app;
    }

    private static async Task<Results<Ok<WorkspaceObject>, ErrorResult>> CreateWorkspace(
        HttpRequest request, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var fields = await ReadWorkspaceFieldsAsync(request, cancellationToken);
        if (!fields.IsOk)
        {
            return fields.Error.ToResult();
        }
        var created = await workspaces.CreateAsync(fields.Value, cancellationToken);
        return created.IsOk ? TypedResults.Ok(WorkspaceObject.From(created.Value)) : created.Error.ToResult();
    }

    /// <summary>
    /// A workspace body: <c>name</c>, <c>storage_quota_bytes</c>, <c>rate_limit_rpm</c>, <c>allowed_providers</c>,
    /// <c>webhook_url</c> (an explicit null clears a limit or removes the webhook).
    /// </summary>
    private static async Task<Result<WorkspaceChange>> ReadWorkspaceFieldsAsync(HttpRequest request, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, MaxBodyBytes, cancellationToken);
        if (!body.IsOk)
        {
            return body.Error;
        }
        var fields = body.Value;
        var name = fields.String("name");
        var quota = fields.Int64("storage_quota_bytes");
        var rpm = fields.Int32("rate_limit_rpm");
        var allowed = fields.Strings("allowed_providers");
        var webhookUrl = fields.String("webhook_url");
        var error = name.Error ?? quota.Error ?? rpm.Error ?? allowed.Error ?? webhookUrl.Error;
        if (error is not null)
        {
            return error;
        }
        return new WorkspaceChange
        {
            Name = name.Value,
            StorageQuotaBytes = quota.Value,
            ClearStorageQuota = fields.IsNull("storage_quota_bytes"),
            RateLimitRpm = rpm.Value,
            ClearRateLimit = fields.IsNull("rate_limit_rpm"),
            AllowedProviders = allowed.Value,
            ClearAllowedProviders = fields.IsNull("allowed_providers"),
            WebhookUrl = webhookUrl.Value,
            ClearWebhookUrl = fields.IsNull("webhook_url"),
        };
    }

    private static async Task<Results<Ok<AdminList<WorkspaceObject>>, ErrorResult>> ListWorkspaces(
        string? limit, string? after, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        int? pageSize = null;
        if (limit is not null)
        {
            if (!int.TryParse(limit, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int parsed))
            {
                return WharfErrors.Invalid("limit", $"Invalid 'limit': expected an integer between 1 and {WorkspaceService.MaxListLimit}.", "invalid_limit").ToResult();
            }
            pageSize = parsed;
        }
        var page = await workspaces.ListAsync(pageSize, after, cancellationToken);
        return page.IsOk
            ? TypedResults.Ok(AdminList<WorkspaceObject>.From([.. page.Value.Items.Select(WorkspaceObject.From)], page.Value.HasMore, w => w.Id))
            : page.Error.ToResult();
    }

    private static async Task<Results<Ok<WorkspaceObject>, ErrorResult>> GetWorkspace(
        string id, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var workspace = await workspaces.GetAsync(id, cancellationToken);
        return workspace.IsOk ? TypedResults.Ok(WorkspaceObject.From(workspace.Value)) : workspace.Error.ToResult();
    }

    private static async Task<Results<Ok<WorkspaceObject>, ErrorResult>> UpdateWorkspace(
        string id, HttpRequest request, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var change = await ReadWorkspaceFieldsAsync(request, cancellationToken);
        if (!change.IsOk)
        {
            return change.Error.ToResult();
        }
        var updated = await workspaces.ChangeAsync(id, change.Value, cancellationToken);
        return updated.IsOk ? TypedResults.Ok(WorkspaceObject.From(updated.Value)) : updated.Error.ToResult();
    }

    private static async Task<Results<Ok<DeletedObject>, ErrorResult>> DeleteWorkspace(
        string id, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var deleted = await workspaces.DeleteAsync(id, cancellationToken);
        return deleted.IsOk ? TypedResults.Ok(new DeletedObject(id, "workspace", true)) : deleted.Error.ToResult();
    }

    private static async Task<Results<Ok<KeyObject>, ErrorResult>> CreateKey(
        string id, HttpRequest request, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var body = await JsonBody.ReadAsync(request, MaxBodyBytes, cancellationToken);
        if (!body.IsOk)
        {
            return body.Error.ToResult();
        }
        var fields = body.Value;
        var name = fields.String("name");
        var scopes = fields.Strings("scopes");
        var expiresAt = fields.Int64("expires_at");
        var rpm = fields.Int32("rate_limit_rpm");
        var error = name.Error ?? scopes.Error ?? expiresAt.Error ?? rpm.Error;
        if (error is not null)
        {
            return error.ToResult();
        }
        var created = await workspaces.CreateKeyAsync(id, new KeyRequest
        {
            Name = name.Value,
            Scopes = scopes.Value,
            ExpiresAt = expiresAt.Value,
            RateLimitRpm = rpm.Value,
        }, cancellationToken);
        return created.IsOk ? TypedResults.Ok(KeyObject.From(created.Value.Key, created.Value.Secret)) : created.Error.ToResult();
    }

    private static async Task<Results<Ok<AdminList<KeyObject>>, ErrorResult>> ListKeys(
        string id, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var keys = await workspaces.ListKeysAsync(id, cancellationToken);
        return keys.IsOk
            ? TypedResults.Ok(AdminList<KeyObject>.From([.. keys.Value.Select(k => KeyObject.From(k, null))], false, k => k.Id))
            : keys.Error.ToResult();
    }

    private static async Task<Results<Ok<DeletedObject>, ErrorResult>> RevokeKey(
        string id, WorkspaceService workspaces, CancellationToken cancellationToken)
    {
        var revoked = await workspaces.RevokeKeyAsync(id, cancellationToken);
        return revoked.IsOk ? TypedResults.Ok(new DeletedObject(id, "api_key", true)) : revoked.Error.ToResult();
    }
}
