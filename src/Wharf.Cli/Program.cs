using Wharf.Cli;

return await CliApp.RunAsync(args);
