from gpt_tui.fastcli import main

main()
