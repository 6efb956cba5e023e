Feature: Running out of stock
  As the buyer at stock@made.com
  I want one mail for every order that finds no batch to take it
  So that I can buy more before customers notice

  @book
  Scenario: An order bigger than the stock sends exactly one mail and allocates nothing
    Given a batch "b1" of 9 "POPULAR-CURTAINS" in the warehouse
    When I allocate order "o1" of 10 "POPULAR-CURTAINS"
    Then I am told "POPULAR-CURTAINS" is out of stock
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for POPULAR-CURTAINS"
    And the bus handled, in this order:
      | event                                 |
      | out of stock: POPULAR-CURTAINS, order o1 |
    And batch "b1" has 9 available
    And batch "b1" holds 0 orders

  @book
  Scenario: Running out leaves the version where it was
    Given a batch "batch1" of 10 "SMALL-FORK" in the warehouse
    And order "order1" of 10 "SMALL-FORK" has been allocated
    When I allocate order "order2" of 1 "SMALL-FORK"
    Then I am told "SMALL-FORK" is out of stock
    And the product "SMALL-FORK" is at version 1
    And batch "batch1" holds 1 order
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for SMALL-FORK"

  @book
  Scenario: Every failed attempt is reported, not collapsed into one
    Given a batch "b1" of 0 "SMALL-TABLE" in the warehouse
    When I allocate order "o1" of 1 "SMALL-TABLE"
    And I allocate order "o2" of 1 "SMALL-TABLE"
    And I allocate order "o1" of 1 "SMALL-TABLE"
    Then I am told "SMALL-TABLE" is out of stock
    And 3 mails were sent to "stock@made.com"
    And the bus handled, in this order:
      | event                            |
      | out of stock: SMALL-TABLE, order o1 |
      | out of stock: SMALL-TABLE, order o2 |
      | out of stock: SMALL-TABLE, order o1 |

  @book
  Scenario Outline: An order of <qty> against a stock of <stock>: <mails> mails
    Given a batch "b1" of <stock> "SMALL-TABLE" in the warehouse
    When I allocate order "o1" of <qty> "SMALL-TABLE"
    Then <mails> mails were sent to "stock@made.com"
    And the bus handled <mails> OutOfStock events
    And batch "b1" has <left> available

    Examples: a line that fits exactly is allocated; one unit more is out of stock
      | stock | qty | mails | left |
      | 20    | 2   | 0     | 18   |
      | 10    | 10  | 0     | 0    |
      | 10    | 11  | 1     | 10   |
      | 2     | 20  | 1     | 2    |
      | 0     | 1   | 1     | 0    |

  @book
  Scenario: Only the order that does not fit is reported, and later smaller orders still fit
    Given a batch "b1" of 5 "SOFA" in the warehouse
    When I allocate order "o1" of 3 "SOFA"
    And I allocate order "o2" of 3 "SOFA"
    And I allocate order "o3" of 2 "SOFA"
    Then the allocation returns batch "b1"
    And batch "b1" has 0 available
    And exactly one mail was sent, to "stock@made.com", saying "Out of stock for SOFA"
    And the bus handled, in this order:
      | event                               |
      | allocated: SOFA, order o1, batch b1 |
      | out of stock: SOFA, order o2        |
      | allocated: SOFA, order o3, batch b1 |
