namespace Wharf.Cli;

/// <summary>
/// Why a command could not do its work, as a value: the message (and hint) the user reads on stderr and the exit
/// code. Commands return it; only <see cref="CliApp"/> prints it.
/// </summary>
internal sealed record CliFailure(int ExitCode, string Message, string? Hint = null, string? RequestId = null)
{
    /// <summary>The HTTP status of the server's refusal, when the failure is one.</summary>
    public int? Status { get; init; }

    public static CliFailure Usage(string message, string? hint = null) => new(ExitCodes.Usage, message, hint);

    public static CliFailure Failed(string message, string? hint = null) => new(ExitCodes.Failed, message, hint);
}

/// <summary>A command's outcome: a value, or a <see cref="CliFailure"/>.</summary>
internal readonly struct Outcome<T>
{
    private readonly T? _value;

    private Outcome(T? value, CliFailure? failure)
    {
        _value = value;
        Failure = failure;
    }

    public CliFailure? Failure { get; }

    public bool IsOk => Failure is null;

    public T Value => IsOk ? _value! : throw new InvalidOperationException("The outcome is a failure: " + Failure!.Message);

    public static implicit operator Outcome<T>(T value) => new(value, null);

    public static implicit operator Outcome<T>(CliFailure failure) => new(default, failure);
}
