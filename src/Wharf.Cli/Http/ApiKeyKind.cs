namespace Wharf.Cli.Http;

/// <summary>Which credential a request carries: a workspace's API key or the operator's admin key.</summary>
internal enum ApiKeyKind
{
    Workspace,
    Admin,
}
