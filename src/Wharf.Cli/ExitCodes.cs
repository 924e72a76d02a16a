namespace Wharf.Cli;

/// <summary>What the process's exit code says, so that a script can tell a typo from a refusal.</summary>
internal static class ExitCodes
{
    /// <summary>Everything asked was done.</summary>
    public const int Ok = 0;

    /// <summary>The server refused the request (its error envelope is printed), or could not be reached.</summary>
    public const int Failed = 1;

    /// <summary>The command line or the settings are wrong (unknown option, bad value, missing key, no such path).</summary>
    public const int Usage = 2;

    /// <summary>A batch waited for ended without completing (<c>failed</c>, <c>expired</c> or <c>cancelled</c>).</summary>
    public const int BatchNotCompleted = 3;

    /// <summary>Stopped by the user (Ctrl+C); what was sent so far is kept for a resume.</summary>
    public const int Interrupted = 130;
}
