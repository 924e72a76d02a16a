using System.CommandLine;
using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli.Admin;

/// <summary><c>wharf admin workspaces ls|create|get|rm</c> and <c>wharf admin keys ls|create|revoke</c>, with the admin key.</summary>
internal static class AdminCommands
{
    public static Command Build()
    {
        var workspaces = new Command("workspaces", "Workspaces: each owns its files, batches and keys.");
        workspaces.Subcommands.Add(ListWorkspaces());
        workspaces.Subcommands.Add(CreateWorkspace());
        workspaces.Subcommands.Add(GetWorkspace());
        workspaces.Subcommands.Add(RemoveWorkspace());

        var keys = new Command("keys", "API keys of a workspace.");
        keys.Subcommands.Add(ListKeys());
        keys.Subcommands.Add(CreateKey());
        keys.Subcommands.Add(RevokeKey());

        var admin = new Command("admin", "The admin API (needs the server's admin key: WHARF_ADMIN_KEY or --admin-key).");
        admin.Subcommands.Add(workspaces);
        admin.Subcommands.Add(keys);
        return admin;
    }

    private static Command ListWorkspaces()
    {
        var limit = CountOption.Create("--limit", "Workspaces per page");
        var after = new Option<string?>("--after") { Description = "Start after this workspace id" };
        var all = new Option<bool>("--all") { Description = "Follow the cursors to the last page" };
        var command = new Command("ls", "List workspaces.") { limit, after, all };
        CliApp.Handle(command, (parse, context, cancellationToken) => Pages.PrintAsync(
            context,
            cursor => context.Client.Address.Admin("workspaces" + Pages.Query(
            [
                new("limit", parse.GetValue(limit)?.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                new("after", cursor),
            ])),
            ApiKeyKind.Admin, parse.GetValue(after), parse.GetValue(all), WorkspaceTable, WorkspaceRow, "workspaces", cancellationToken));
        return command;
    }

    private static Command CreateWorkspace()
    {
        var name = new Argument<string>("NAME") { Description = "The workspace's name" };
        var command = new Command("create", "Create a workspace.") { name };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var created = await context.Client.PostJsonAsync(
                context.Client.Address.Admin("workspaces"), new WorkspaceCreateBody(parse.GetValue(name)!),
                CliJson.Default.WorkspaceCreateBody, ApiKeyKind.Admin, cancellationToken);
            return Print(context, created, WorkspaceDetails);
        });
        return command;
    }

    private static Command GetWorkspace()
    {
        var id = new Argument<string>("ID") { Description = "The workspace id" };
        var command = new Command("get", "Show a workspace and its storage use.") { id };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
            Print(context, await context.Client.GetAsync(WorkspaceUri(context, parse.GetValue(id)!), ApiKeyKind.Admin, cancellationToken), WorkspaceDetails));
        return command;
    }

    private static Command RemoveWorkspace()
    {
        var id = new Argument<string>("ID") { Description = "The workspace id" };
        var command = new Command("rm", "Delete a workspace: its keys stop at once, its files are swept.") { id };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
            Print(context, await context.Client.DeleteAsync(WorkspaceUri(context, parse.GetValue(id)!), ApiKeyKind.Admin, cancellationToken), Deleted));
        return command;
    }

    private static Command ListKeys()
    {
        var workspace = new Argument<string>("WORKSPACE") { Description = "The workspace id" };
        var command = new Command("ls", "List a workspace's keys (never their secrets).") { workspace };
        CliApp.Handle(command, (parse, context, cancellationToken) => Pages.PrintAsync(
            context, _ => new Uri(WorkspaceUri(context, parse.GetValue(workspace)!) + "/keys"),
            ApiKeyKind.Admin, null, all: false, KeyTable, KeyRow, "keys", cancellationToken));
        return command;
    }

    private static Command CreateKey()
    {
        var workspace = new Argument<string>("WORKSPACE") { Description = "The workspace id" };
        var name = new Option<string>("--name") { Description = "The key's name", DefaultValueFactory = _ => "wharf-cli" };
        var scopes = new Option<string[]>("--scopes")
        {
            Description = "Scopes (files:read, files:write, batches:read, batches:write, models:invoke), comma-separated or repeated; none: every scope",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var command = new Command("create", "Create a key; its secret is shown this once.") { workspace, name, scopes };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
        {
            var given = parse.GetValue(scopes);
            List<string>? list = given is { Length: > 0 }
                ? [.. given.SelectMany(s => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))]
                : null;
            var created = await context.Client.PostJsonAsync(
                new Uri(WorkspaceUri(context, parse.GetValue(workspace)!) + "/keys"), new KeyCreateBody(parse.GetValue(name)!, list),
                CliJson.Default.KeyCreateBody, ApiKeyKind.Admin, cancellationToken);
            return Print(context, created, element =>
            {
                var key = element.Deserialize(CliJson.Default.KeyObject)!;
                Output.Line($"{key.Id} ({key.Name}) in {key.WorkspaceId}, scopes {string.Join(',', key.Scopes)}");
                Output.Line($"key: {key.Key}");
                Output.Note("The key is shown this once: keep it now.");
            });
        });
        return command;
    }

    private static Command RevokeKey()
    {
        var id = new Argument<string>("ID") { Description = "The key id (key_...)" };
        var command = new Command("revoke", "Revoke a key: the next request with it is refused.") { id };
        CliApp.Handle(command, async (parse, context, cancellationToken) =>
            Print(context, await context.Client.DeleteAsync(
                context.Client.Address.Admin($"keys/{Uri.EscapeDataString(parse.GetValue(id)!)}"), ApiKeyKind.Admin, cancellationToken), Deleted));
        return command;
    }

    private static CliFailure? Print(CommandContext context, Outcome<JsonElement> answer, Action<JsonElement> forPeople)
    {
        if (!answer.IsOk)
        {
            return answer.Failure;
        }
        if (context.Json)
        {
            Output.Json(answer.Value);
        }
        else
        {
            forPeople(answer.Value);
        }
        return null;
    }

    private static void Deleted(JsonElement element) => Output.Line($"deleted {element.GetProperty("id").GetString()}");

    private static Uri WorkspaceUri(CommandContext context, string id) => context.Client.Address.Admin($"workspaces/{Uri.EscapeDataString(id)}");

    private static void WorkspaceDetails(JsonElement element)
    {
        var table = WorkspaceTable();
        WorkspaceRow(table, element);
        Output.Table(table);
    }

    private static Spectre.Console.Table WorkspaceTable() => Output.NewTable("ID", "NAME", "USAGE", "QUOTA", "RPM", "PROVIDERS", "CREATED");

    private static void WorkspaceRow(Spectre.Console.Table table, JsonElement element)
    {
        var w = element.Deserialize(CliJson.Default.WorkspaceObject)!;
        Output.Row(table, w.Id, w.Name, Sizes.Bytes(w.StorageUsageBytes), w.StorageQuotaBytes is { } q ? Sizes.Bytes(q) : "-",
            w.RateLimitRpm?.ToString(System.Globalization.CultureInfo.InvariantCulture) ?? "-",
            w.AllowedProviders is { } p ? string.Join(',', p) : "all", Sizes.Time(w.CreatedAt));
    }

    private static Spectre.Console.Table KeyTable() => Output.NewTable("ID", "NAME", "PREFIX", "SCOPES", "CREATED", "LAST USED", "EXPIRES");

    private static void KeyRow(Spectre.Console.Table table, JsonElement element)
    {
        var k = element.Deserialize(CliJson.Default.KeyObject)!;
        Output.Row(table, k.Id, k.Name, k.Prefix, string.Join(',', k.Scopes), Sizes.Time(k.CreatedAt), Sizes.Time(k.LastUsedAt), Sizes.Time(k.ExpiresAt));
    }
}
