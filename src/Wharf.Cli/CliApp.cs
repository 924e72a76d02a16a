using System.CommandLine;
using Wharf.Cli.Admin;
using Wharf.Cli.Batches;
using Wharf.Cli.Files;
using Wharf.Cli.Terminal;

namespace Wharf.Cli;

/// <summary>A command's work: returns null when done, else why not (printed by <see cref="CliApp"/>).</summary>
internal delegate Task<CliFailure?> CommandHandler(ParseResult parse, CommandContext context, CancellationToken cancellationToken);

/// <summary>The <c>wharf</c> command tree, and the one place that turns outcomes into output and exit codes.</summary>
internal static class CliApp
{
    public static RootCommand Build()
    {
        var root = new RootCommand("wharf: files, uploads, batches and workspaces of a Wharf gateway.");
        GlobalOptions.AddTo(root);
        root.Subcommands.Add(FilesCommands.Build());
        root.Subcommands.Add(BatchesCommands.Build());
        root.Subcommands.Add(AdminCommands.Build());
        root.Subcommands.Add(ProvidersCommand.Build());
        return root;
    }

    public static async Task<int> RunAsync(string[] args)
    {
        var root = Build();
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var error in parse.Errors)
            {
                Console.Error.WriteLine("error: " + error.Message);
            }
            string command = string.Join(' ', parse.CommandResult.Command is RootCommand ? ["wharf"] : CommandPath(parse.CommandResult.Command));
            Console.Error.WriteLine($"Run '{command} --help' for usage.");
            return ExitCodes.Usage;
        }
        // Exceptions are handled by Handle below: the user sees a message, never a stack trace.
        return await parse.InvokeAsync(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
    }

    /// <summary>Sets <paramref name="handler"/> as the command's action, with the settings resolved and failures printed.</summary>
    public static void Handle(Command command, CommandHandler handler) =>
        command.SetAction(async (parse, cancellationToken) =>
        {
            var context = CommandContext.From(parse);
            if (!context.IsOk)
            {
                return Report(context.Failure!);
            }
            try
            {
                var failure = await handler(parse, context.Value, cancellationToken);
                return failure is null ? ExitCodes.Ok : Report(failure);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                Output.Note("Interrupted.");
                return ExitCodes.Interrupted;
            }
            catch (Exception e) when (e is HttpRequestException or HttpIOException)
            {
                // The connection dropped while a body was streaming: what was received is kept for a resume.
                return Report(CliFailure.Failed($"The connection to the server was lost: {e.Message}", "Run the command again: uploads in parts and downloads resume."));
            }
            catch (Exception e) when (e is UnauthorizedAccessException or FileNotFoundException or DirectoryNotFoundException)
            {
                return Report(CliFailure.Usage(e.Message));
            }
            catch (IOException e)
            {
                return Report(CliFailure.Failed(e.Message));
            }
            catch (Exception e)
            {
                return Report(CliFailure.Failed($"Unexpected failure ({e.GetType().Name}): {e.Message}"));
            }
        });

    private static int Report(CliFailure failure)
    {
        Output.Failure(failure);
        return failure.ExitCode;
    }

    private static IEnumerable<string> CommandPath(Command command)
    {
        var names = new List<string>();
        for (Symbol? symbol = command; symbol is Command c; symbol = c.Parents.FirstOrDefault())
        {
            names.Insert(0, c is RootCommand ? "wharf" : c.Name);
        }
        return names;
    }
}
