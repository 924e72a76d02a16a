using System.CommandLine;
using System.Text.Json;
using Wharf.Cli.Http;
using Wharf.Cli.Terminal;

namespace Wharf.Cli;

/// <summary><c>wharf providers</c>: the providers the key's workspace may use, with their capabilities and models.</summary>
internal static class ProvidersCommand
{
    public static Command Build()
    {
        var command = new Command("providers", "List the providers your key may use.");
        CliApp.Handle(command, async (_, context, cancellationToken) =>
        {
            var answer = await context.Client.GetAsync(context.Client.Address.Api("providers"), ApiKeyKind.Workspace, cancellationToken);
            if (!answer.IsOk)
            {
                return answer.Failure;
            }
            if (context.Json)
            {
                Output.Json(answer.Value);
                return null;
            }
            var table = Output.NewTable("ID", "TYPE", "CAPABILITIES", "MODELS");
            foreach (var element in answer.Value.GetProperty("data").EnumerateArray())
            {
                var p = element.Deserialize(CliJson.Default.ProviderObject)!;
                Output.Row(table, p.Id, p.Type, string.Join(", ", p.Capabilities), p.Models is { } m ? string.Join(", ", m) : "any");
            }
            Output.Table(table);
            return null;
        });
        return command;
    }
}
