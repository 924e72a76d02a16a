using System.Text.Json;
using Spectre.Console;

namespace Wharf.Cli.Terminal;

/// <summary>
/// What a command prints on stdout: a table or lines for people, or with <c>--json</c> exactly one JSON document.
/// Messages about the work (progress, notes, errors) go to stderr.
/// </summary>
internal static class Output
{
    private static readonly JsonWriterOptions Indented = new() { Indented = true };

    /// <summary>Writes <paramref name="document"/> (as the server sent it) as the one JSON document on stdout.</summary>
    public static void Json(JsonElement document) => Json(document.WriteTo);

    /// <summary>Writes one JSON document on stdout through <paramref name="write"/>, streamed as it is produced.</summary>
    public static void Json(Action<Utf8JsonWriter> write)
    {
        using var stdout = Console.OpenStandardOutput();
        using (var writer = new Utf8JsonWriter(stdout, Indented))
        {
            write(writer);
        }
        stdout.Write("\n"u8);
    }

    /// <summary>
    /// Stdout for tables: a terminal's width, or, when stdout is a file or a pipe, wide enough that no cell is ever cut
    /// (a script reading the table gets whole ids).
    /// </summary>
    private static readonly Lazy<IAnsiConsole> Stdout = new(() =>
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        if (Console.IsOutputRedirected)
        {
            console.Profile.Width = 4096;
        }
        return console;
    });

    public static void Table(Table table) => Stdout.Value.Write(table);

    public static Table NewTable(params string[] columns)
    {
        var table = new Table().Border(TableBorder.Simple);
        foreach (string column in columns)
        {
            table.AddColumn(new TableColumn(Markup.Escape(column)).NoWrap());
        }
        return table;
    }

    public static void Row(Table table, params string?[] cells) =>
        table.AddRow([.. cells.Select(c => new Text(c ?? ""))]);

    public static void Line(string text) => Console.Out.WriteLine(text);

    /// <summary>A note about the work on stderr (never part of the result on stdout).</summary>
    public static void Note(string text)
    {
        lock (Console.Error)
        {
            Console.Error.WriteLine(text);
        }
    }

    /// <summary>A failure on stderr: the message, then the hint and the request id when there are.</summary>
    public static void Failure(CliFailure failure)
    {
        lock (Console.Error)
        {
            Console.Error.WriteLine("error: " + failure.Message);
            if (!string.IsNullOrWhiteSpace(failure.Hint))
            {
                Console.Error.WriteLine("hint: " + failure.Hint);
            }
            if (!string.IsNullOrWhiteSpace(failure.RequestId))
            {
                Console.Error.WriteLine("request id: " + failure.RequestId);
            }
        }
    }
}
